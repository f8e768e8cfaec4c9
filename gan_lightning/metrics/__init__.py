"""Sample-quality metrics tracked during training and computed on checkpoints.

``metrics=toy2d``: mode coverage on 2-D mixtures; ``metrics=image``: FID, IS, KID and precision/recall
through torch-fidelity, with Inception-v3 or a classifier trained on the data set as feature extractor.
"""

from __future__ import annotations

from gan_lightning.metrics.configs import AutoMetrics, MetricsConfig  # importing the options registers their schemas
from gan_lightning.metrics.goals import SUMMARY_GOALS, better

__all__ = ["AutoMetrics", "MetricsConfig", "SUMMARY_GOALS", "better"]

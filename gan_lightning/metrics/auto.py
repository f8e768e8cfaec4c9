"""``metrics=auto`` (the default): the sample-quality metrics that fit the data, at a cost of a few per cent of a run."""

from __future__ import annotations

from dataclasses import dataclass
from omegaconf import MISSING

from gan_lightning.data.toy import Gaussian1D
from gan_lightning.metrics import MetricsConfig, NoMetrics
from gan_lightning.metrics.fidelity import ImageMetrics
from gan_lightning.metrics.modes import Toy2DMetrics
from gan_lightning.metrics.toy1d import Toy1DMetrics


@dataclass
class AutoMetrics(MetricsConfig, name="auto"):
    """Image metrics for image data, mode coverage for the 2-D mixtures, distances to the normal for gaussian1d
    (each with the settings under its own key, but for ``every_n_steps``, which applies to whichever is chosen); no
    metrics for other data. The run trains with the chosen one."""

    image: ImageMetrics = MISSING
    toy2d: Toy2DMetrics = MISSING
    toy1d: Toy1DMetrics = MISSING

    def choose(self, data_config) -> MetricsConfig:
        if len(data_config.sample_shape) == 3:
            chosen: MetricsConfig = self.image
        elif hasattr(data_config, "centers"):
            chosen = self.toy2d
        elif isinstance(data_config, Gaussian1D):
            chosen = self.toy1d
        else:
            return NoMetrics(every_n_steps=0)
        chosen.every_n_steps = self.every_n_steps
        return chosen

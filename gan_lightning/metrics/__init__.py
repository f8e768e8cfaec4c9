"""Sample-quality metrics tracked during training and computed on checkpoints.

``metrics=toy2d``: mode coverage on 2-D mixtures; ``metrics=image``: FID, IS, KID and precision/recall
through torch-fidelity, with Inception-v3 or a classifier trained on the data set as feature extractor.
"""

from __future__ import annotations

# Whether lower or higher is better: W&B keeps the best value of each as the run's summary.
SUMMARY_GOALS = {
    "fid": "min",
    "intra_fid": "min",
    "kid_mean": "min",
    "reverse_kl": "min",
    "w1_distance": "min",
    "ks_statistic": "min",
    "is_mean": "max",
    "precision": "max",
    "recall": "max",
    "modes": "max",
    "hq_fraction": "max",
    "balanced_hq_fraction": "max",
    "parzen_log_likelihood": "max",
}


def better(metric: str, value: float, than: float) -> bool:
    """Whether ``value`` of ``metric`` is strictly better than ``than`` (so the first of equal values stays the best)."""
    return value < than if SUMMARY_GOALS[metric] == "min" else value > than


from gan_lightning.metrics.configs import AutoMetrics, MetricsConfig  # noqa: E402  (importing the options registers their schemas)

__all__ = ["AutoMetrics", "MetricsConfig", "SUMMARY_GOALS", "better"]

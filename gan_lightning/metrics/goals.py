"""Whether lower or higher is better for each metric with a direction."""

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

"""Mode coverage on 2-D Gaussian mixtures, with the protocol of VEEGAN and PacGAN (Lin et al. 2018)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict

import torch
from torch import Tensor

from gan_lightning.metrics.evaluation import Evaluation

if TYPE_CHECKING:
    from gan_lightning.metrics.configs import Toy2DMetrics


def mode_coverage(samples: Tensor, centers: Tensor, std: float, threshold: float = 3.0) -> Dict[str, float]:
    """How well ``samples`` cover the modes ``centers`` of an isotropic mixture with standard deviation ``std``.

    Each sample belongs to its nearest mode; it is *high quality* when that distance is below
    ``threshold`` standard deviations. ``modes``: modes with at least one high-quality sample.
    ``hq_fraction``: share of high-quality samples. ``reverse_kl``: KL(q ‖ uniform) of the histogram q of
    high-quality samples over the modes (0 when they spread evenly, log K when all sit on one mode;
    infinite when there is no high-quality sample). ``balanced_hq_fraction``: the share of high-quality
    samples when each mode counts at most its fair share (1/K of the samples): one number that every
    failure lowers (samples between modes, lost modes, modes over- or under-filled), so that a search can
    maximise it; the data's own samples score about 0.96 on 2 500 samples of 25 modes.
    """
    samples, centers = samples.detach().double().cpu(), centers.detach().double().cpu()
    distance, nearest = torch.cdist(samples, centers).min(dim=1)
    good = distance < threshold * std
    counts = torch.bincount(nearest[good], minlength=len(centers)).double()
    total = counts.sum().item()
    if total == 0:
        reverse_kl = math.inf
    else:
        q = counts[counts > 0] / total
        reverse_kl = float((q * torch.log(q * len(centers))).sum())
    balanced = counts.clamp(max=len(samples) / len(centers)).sum().item() / len(samples)
    return {
        "modes": float((counts > 0).sum()),
        "hq_fraction": total / len(samples),
        "reverse_kl": reverse_kl,
        "balanced_hq_fraction": balanced,
    }


class ModeCoverage(Evaluation):
    def __init__(self, config: Toy2DMetrics, data_config, seed: int):
        super().__init__(config.every_n_steps, seed)
        self.config, self.centers, self.std = config, data_config.centers, data_config.std

    def method(self, final: bool) -> Dict[str, Any]:
        return {"samples": self.config.num_samples, "high_quality_within_std": self.config.threshold, "modes_of": "the data's mixture centres",
                "library": "gan_lightning mode_coverage"}  # fmt: skip

    def sample_count(self, final: bool) -> int:
        return self.config.num_samples

    def score(self, samples: Tensor, final: bool) -> Dict[str, float]:
        return mode_coverage(samples, self.centers, self.std, self.config.threshold)

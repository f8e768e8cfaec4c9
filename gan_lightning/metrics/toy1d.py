"""``metrics=toy1d``: how far G's samples are from the 1-D normal distribution of ``data=gaussian1d``.

p_data is known in closed form, so the distances are computed against it exactly, not against a second sample.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict

import torch
from torch import Tensor

from gan_lightning.metrics.evaluation import Evaluation

if TYPE_CHECKING:
    from gan_lightning.metrics.configs import Toy1DMetrics


def normal_distances(samples: Tensor, mean: float, std: float) -> Dict[str, float]:
    """The Wasserstein-1 distance and the Kolmogorov–Smirnov statistic between the empirical distribution of
    ``samples`` and N(mean, std²).

    W1 = ∫₀¹ |F_n⁻¹(u) − Q(u)| du with Q the normal quantile function; on each step [(i−1)/n, i/n] of F_n⁻¹ the
    integral is exact, through the antiderivative of Q: ∫₀ᵘ Q = mean·u − std·φ(Φ⁻¹(u)).
    """
    x = samples.detach().double().flatten().sort().values.cpu()
    n = len(x)
    grid = torch.arange(n + 1, dtype=torch.float64) / n
    low, high = grid[:-1], grid[1:]
    # Where the normal quantile crosses each sample, within the sample's step.
    crossing = torch.minimum(torch.maximum(torch.special.ndtr((x - mean) / std), low), high)

    def integral(u: Tensor) -> Tensor:  # ∫₀ᵘ Q
        density = torch.exp(-0.5 * torch.special.ndtri(u) ** 2) / math.sqrt(2 * math.pi)
        return mean * u - std * torch.nan_to_num(density, nan=0.0)

    below = x * (crossing - low) - (integral(crossing) - integral(low))  # Q < x on [low, crossing]
    above = (integral(high) - integral(crossing)) - x * (high - crossing)  # Q > x on [crossing, high]
    cdf = torch.special.ndtr((x - mean) / std)
    ks = torch.maximum(high - cdf, cdf - low).max()
    return {"w1_distance": float((below + above).sum()), "ks_statistic": float(ks)}


class NormalDistances(Evaluation):
    def __init__(self, config: Toy1DMetrics, data_config, seed: int):
        super().__init__(config.every_n_steps, seed)
        self.config, self.mean, self.std = config, data_config.mean, data_config.std

    def method(self, final: bool) -> Dict[str, Any]:
        return {
            "samples": self.config.num_samples,
            "against": f"N({self.mean}, {self.std}^2), exactly",
            "library": "gan_lightning normal_distances",
        }

    def sample_count(self, final: bool) -> int:
        return self.config.num_samples

    def score(self, samples: Tensor, final: bool) -> Dict[str, float]:
        return normal_distances(samples, self.mean, self.std)

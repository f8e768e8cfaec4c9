"""The Parzen-window log-likelihood estimate of Goodfellow et al. 2014 (after Breuleux et al. 2011).

Fit a Gaussian kernel density with bandwidth σ on generated samples, choose σ by the log-likelihood
of a validation set, report the mean log-likelihood of test samples and its standard error. It is a
high-variance estimate in high dimensions, kept for comparison with the paper (MNIST: 225 ± 2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Sequence

import torch
from torch import Tensor

from gan_lightning.errors import invalid
from gan_lightning.metrics.evaluation import Evaluation

if TYPE_CHECKING:
    from gan_lightning.metrics.configs import ParzenMetrics


def parzen_log_likelihood(points: Tensor, centres: Tensor, sigma: float, batch_size: int = 256) -> Tensor:
    """log p(x) for each row of ``points`` under the mixture of N(c, σ²I) over the rows of ``centres``."""
    points, centres = points.flatten(1).double(), centres.flatten(1).double()
    n, d = centres.shape
    constant = math.log(n) + 0.5 * d * math.log(2 * math.pi * sigma**2)
    out = []
    for start in range(0, len(points), batch_size):
        squared = torch.cdist(points[start : start + batch_size], centres).pow(2)
        out.append(torch.logsumexp(-squared / (2 * sigma**2), dim=1) - constant)
    return torch.cat(out)


def parzen_estimate(generated: Tensor, validation: Tensor, test: Tensor, sigmas: Sequence[float]) -> Dict[str, float]:
    """Choose σ among ``sigmas`` on ``validation``; the mean test log-likelihood and its standard error at that σ."""
    scores = {sigma: parzen_log_likelihood(validation, generated, sigma).mean().item() for sigma in sigmas}
    sigma = max(scores, key=scores.get)
    test_ll = parzen_log_likelihood(test, generated, sigma)
    return {
        "sigma": sigma,
        "log_likelihood": test_ll.mean().item(),
        "standard_error": (test_ll.std() / math.sqrt(len(test_ll))).item(),
    }


class ParzenEvaluation(Evaluation):
    def __init__(self, config: ParzenMetrics, data_config, seed: int):
        super().__init__(config.every_n_steps, seed)
        self.config, self.data_config = config, data_config

    def real(self, split: str, start: int, count: int) -> Tensor:
        images = self.data_config.labelled_images(split)[0][start : start + count]
        if len(images) == 0:
            raise invalid("metrics.validation_start", start, f"an index below the {split} split's size")
        return images.flatten(1).double() / 255.0

    def method(self, final: bool) -> Dict[str, Any]:
        c = self.config
        return {"window_samples": c.num_samples, "sigmas": list(c.sigmas), "sigma_chosen_on": f"train images {c.validation_start}-{c.validation_start + c.validation_num_samples - 1}",
                "test_images": c.test_num_samples, "pixels": "[0, 1]", "library": "gan_lightning parzen (parzen_ll.py of Goodfellow et al. 2014)"}  # fmt: skip

    def sample_count(self, final: bool) -> int:
        return self.config.num_samples

    def embed(self, samples: Tensor) -> Tensor:
        low, high = self.data_config.value_range
        return (samples.cpu().flatten(1).double() - low) / (high - low)  # pixels in [0, 1]

    def score(self, generated: Tensor, final: bool) -> Dict[str, float]:
        c = self.config
        validation = self.real("train", c.validation_start, c.validation_num_samples)
        test = self.real("test", 0, c.test_num_samples)
        result = parzen_estimate(generated, validation, test, c.sigmas)
        return {
            "parzen_log_likelihood": result["log_likelihood"],
            "parzen_standard_error": result["standard_error"],
            "parzen_sigma": result["sigma"],
        }

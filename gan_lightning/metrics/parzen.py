"""The Parzen-window log-likelihood estimate of Goodfellow et al. 2014 (after Breuleux et al. 2011).

Fit a Gaussian kernel density with bandwidth σ on generated samples, choose σ by the log-likelihood
of a validation set, report the mean log-likelihood of test samples and its standard error. It is a
high-variance estimate in high dimensions, kept for comparison with the paper (MNIST: 225 ± 2).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence

import torch
from omegaconf import MISSING
from torch import Tensor

from gan_lightning.errors import UserError, invalid, require_positive
from gan_lightning.metrics import Evaluation, MetricsConfig


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
    return {"sigma": sigma, "log_likelihood": test_ll.mean().item(), "standard_error": (test_ll.std() / math.sqrt(len(test_ll))).item()}


@dataclass
class ParzenMetrics(MetricsConfig, name="parzen"):
    """``metrics=parzen``: the Parzen-window test log-likelihood of Goodfellow et al. 2014, on pixels in [0, 1].

    As in the paper's code (``parzen_ll.py``): the window is fitted on ``num_samples`` generated images,
    σ is the best of ``sigmas`` on ``validation_num_samples`` training images from ``validation_start`` on
    (images the run did not train on when ``data.limit`` ≤ ``validation_start``), and the estimate is the
    mean log-likelihood of the first ``test_num_samples`` test images with its standard error.
    """

    MEASURES = ("parzen_log_likelihood",)

    num_samples: int = MISSING
    validation_start: int = MISSING
    validation_num_samples: int = MISSING
    test_num_samples: int = MISSING
    sigmas: List[float] = field(default_factory=lambda: MISSING)

    def check(self, data_config) -> None:
        super().check(data_config)
        for name in ("num_samples", "validation_num_samples", "test_num_samples"):
            require_positive(f"metrics.{name}", getattr(self, name), "a positive number of images")
        if self.validation_start < 0:
            raise invalid("metrics.validation_start", self.validation_start, "an index into the training images, 0 or more")
        if not self.sigmas or min(self.sigmas) <= 0:
            raise invalid("metrics.sigmas", list(self.sigmas), "a non-empty list of positive bandwidths")
        if len(data_config.sample_shape) != 3 or data_config.value_range is None:
            raise UserError(f"metrics=parzen needs image data (mnist, fashion_mnist), not {type(data_config).__name__} data.")
        limit = getattr(data_config, "limit", None)
        if limit is None or limit > self.validation_start:
            # Not an error (the paper's σ would then be chosen on images G was trained on), but worth knowing.
            logging.getLogger("gan_lightning").warning(
                f"metrics=parzen chooses σ on training images from {self.validation_start} on, which this run trains on "
                f"(data.limit={limit}); set data.limit={self.validation_start} to hold them out, as the paper does"
            )

    def callback(self, data_config, seed: int):
        return ParzenEvaluation(self, data_config, seed)


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
        return {"parzen_log_likelihood": result["log_likelihood"], "parzen_standard_error": result["standard_error"], "parzen_sigma": result["sigma"]}

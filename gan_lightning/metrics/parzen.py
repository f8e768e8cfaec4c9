"""The Parzen-window log-likelihood estimate of Goodfellow et al. 2014 (after Breuleux et al. 2011).

Fit a Gaussian kernel density with bandwidth σ on generated samples, choose σ by the log-likelihood
of a validation set, report the mean log-likelihood of test samples and its standard error. It is a
high-variance estimate in high dimensions, kept for comparison with the paper (MNIST: 225 ± 2).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import torch
from torch import Tensor


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

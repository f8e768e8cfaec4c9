"""The Parzen-window estimate recovers known log-densities."""

from __future__ import annotations

import math

import pytest
import torch

from gan_lightning.metrics.parzen import parzen_estimate, parzen_log_likelihood


def test_one_centre_gives_the_gaussian_log_density():
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    expected = [-math.log(2 * math.pi * 0.25) - (0 + 0) / (2 * 0.25), -math.log(2 * math.pi * 0.25) - 5 / (2 * 0.25)]
    assert parzen_log_likelihood(x, torch.zeros(1, 2), sigma=0.5).tolist() == pytest.approx(expected)


def test_estimate_approaches_the_true_mean_log_density_of_a_gaussian():
    g = torch.Generator().manual_seed(0)
    d = 3
    generated, validation, test = (torch.randn(n, d, generator=g) for n in (20000, 1000, 2000))
    result = parzen_estimate(generated, validation, test, sigmas=[0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
    # E log N(x; 0, I) = −d/2 · log(2πe): the negative entropy of the standard normal.
    truth = -0.5 * d * math.log(2 * math.pi * math.e)
    assert result["sigma"] in (0.2, 0.3, 0.5)  # neither the smallest nor the largest bandwidth
    assert result["log_likelihood"] == pytest.approx(truth, abs=0.15)
    assert 0 < result["standard_error"] < 0.05
    # A generator off the data scores clearly lower. (One that only misses the spread need not: a wide
    # bandwidth widens a narrow sample back, a known weakness of the estimate.)
    shifted = parzen_estimate(generated + 1.5, validation, test, sigmas=[0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
    assert shifted["log_likelihood"] < truth - 1.0

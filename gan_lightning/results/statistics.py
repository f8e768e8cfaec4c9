"""The statistics of a comparison of arms over seeds: per arm, the mean with a bootstrap interval; between two arms,
the difference of means with its bootstrap interval and a two-sided test of equal means, a permutation test or
Welch's t-test; over all pairs, Holm's correction. Resampling is seeded, so a comparison reads the same every time it
is made.

scipy does the work (``scipy.stats.bootstrap``, BCa intervals; ``scipy.stats.permutation_test``, exact where the arms
are small enough to list every relabelling; ``scipy.stats.ttest_ind`` with unequal variances); Holm's step-down
correction is a few lines here.
"""

from __future__ import annotations

import itertools
import math
import statistics
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

RESAMPLES = 10_000
LEVEL = 0.95
TESTS = ("permutation", "welch")


@dataclass
class ArmStatistics:
    n: int
    mean: float
    std: Optional[float]  # sample standard deviation (n - 1); None for one value
    sem: Optional[float]  # standard error of the mean
    interval: Optional[Tuple[float, float]]  # bootstrap interval of the mean at LEVEL; None below two values


@dataclass
class Difference:
    difference: float  # mean of the first arm minus mean of the second
    interval: Optional[Tuple[float, float]]
    p_value: float  # two-sided test of equal means (permutation or Welch's t-test)
    p_holm: float = math.nan  # corrected for every pair of the comparison


def mean_interval(values: Sequence[float], seed: int, resamples: int = RESAMPLES) -> Optional[Tuple[float, float]]:
    """The bootstrap (BCa) interval of the mean at LEVEL; None for fewer than two values. Values that are all equal
    give that value as both ends (no spread to resample)."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=float)
    if np.ptp(data) == 0:
        return float(data[0]), float(data[0])
    from scipy.stats import bootstrap

    result = bootstrap((data,), np.mean, n_resamples=resamples, confidence_level=LEVEL, method="BCa",
                       random_state=np.random.default_rng(seed))  # fmt: skip
    low, high = result.confidence_interval
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa is undefined for some degenerate samples
        result = bootstrap((data,), np.mean, n_resamples=resamples, confidence_level=LEVEL, method="percentile",
                           random_state=np.random.default_rng(seed))  # fmt: skip
        low, high = result.confidence_interval
    return float(low), float(high)


def describe(values: Sequence[float], seed: int = 0, resamples: int = RESAMPLES) -> ArmStatistics:
    """n, mean, standard deviation, standard error and (with ``resamples``) the bootstrap interval of the mean."""
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else None
    sem = std / math.sqrt(n) if std is not None else None
    return ArmStatistics(n, mean, std, sem, mean_interval(values, seed, resamples) if resamples else None)


def mean_and_error(values: Sequence[Optional[float]], digits: int) -> str:
    """ "mean ± standard error" of the finite values, as tables show it: the value alone for one, "–" for none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "–"
    arm = describe(finite, resamples=0)
    return f"{arm.mean:.{digits}f}" if arm.sem is None else f"{arm.mean:.{digits}f} ± {arm.sem:.{digits}f}"


def difference_of_means(
    a: Sequence[float], b: Sequence[float], seed: int, resamples: int = RESAMPLES, test: str = "permutation"
) -> Difference:
    """mean(a) - mean(b), its bootstrap (percentile) interval from resampling each arm on its own, and the p-value of
    a two-sided test of equal means: a permutation test (exact when the relabellings number at most ``resamples``;
    free of assumptions, but with few runs its p-values are coarse: 5 against 5 cannot go below 2/252) or Welch's
    t-test (normal values assumed, variances not equal; its p-values are continuous). Welch's test needs two values
    per arm: with fewer its p-value is 1."""
    from scipy.stats import bootstrap, permutation_test

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    difference = float(x.mean() - y.mean())

    def statistic(first, second, axis=-1):
        return np.mean(first, axis=axis) - np.mean(second, axis=axis)

    interval = None
    if len(x) > 1 and len(y) > 1:
        if np.ptp(np.concatenate([x, y])) == 0:
            interval = (0.0, 0.0)
        else:
            result = bootstrap((x, y), statistic, n_resamples=resamples, confidence_level=LEVEL, method="percentile",
                               random_state=np.random.default_rng(seed))  # fmt: skip
            interval = tuple(float(v) for v in result.confidence_interval)
    if np.ptp(np.concatenate([x, y])) == 0:
        p_value = 1.0  # every relabelling gives the same difference, 0
    elif test == "welch":
        from scipy.stats import ttest_ind

        with warnings.catch_warnings():  # nearly equal values: scipy warns of lost precision; the p-value says it
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(ttest_ind(x, y, equal_var=False).pvalue) if min(len(x), len(y)) > 1 else 1.0
        p_value = 1.0 if math.isnan(p_value) else p_value  # no spread within either arm and equal means
    elif min(len(x), len(y)) < 2:  # scipy wants two values per arm; the few relabellings are listed here
        p_value = exact_permutation_p(x, y)
    else:
        test = permutation_test((x, y), statistic, permutation_type="independent", vectorized=True,
                                n_resamples=resamples, alternative="two-sided", random_state=np.random.default_rng(seed))  # fmt: skip
        p_value = float(test.pvalue)
    return Difference(difference, interval, p_value)


def exact_permutation_p(x: np.ndarray, y: np.ndarray) -> float:
    """The two-sided p-value of equal means over every relabelling of the pooled values."""
    pooled, observed = np.concatenate([x, y]), abs(x.mean() - y.mean())
    extreme = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(x)):
        mask = np.zeros(len(pooled), dtype=bool)
        mask[list(chosen)] = True
        extreme += abs(pooled[mask].mean() - pooled[~mask].mean()) >= observed * (1 - 1e-12)
        total += 1
    return extreme / total


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values (family-wise error at the chosen level over all of them), in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def expected_best(values: Sequence[float], trials: int, lower_is_better: bool) -> float:
    """The expected best of ``trials`` runs drawn without replacement from ``values``, every subset alike: what a
    search of that many trials can expect to find (Lucic et al. 2018's view of a budget), computed exactly over all
    subsets rather than by resampling them. With the values sorted worst first, the i-th (from 0) is the best of a
    subset in C(i, trials - 1) of the C(n, trials) subsets."""
    ordered = sorted(values, reverse=lower_is_better)
    n = len(ordered)
    if not 1 <= trials <= n:
        raise ValueError(f"trials={trials} of {n} values")
    return sum(ordered[i] * math.comb(i, trials - 1) for i in range(trials - 1, n)) / math.comb(n, trials)


def smallest_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value an exact permutation test of arms of these sizes can give: 1 / C(n_a + n_b, n_a)
    relabellings, twice that for arms of equal size (swapping the arms gives the same difference, mirrored). With 2
    and 2 runs it is 1/3: no difference is significant at 0.05, whatever the values; with 1 and 2, also 1/3."""
    return min(1.0, (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a))

"""KID and precision/recall of generated features against a fixed reference set, with the reference's share cached.

The estimators are torch-fidelity's (KID: Bińkowski et al. 2018, the unbiased MMD² with the cubic polynomial
kernel over random subsets drawn as torch-fidelity draws them; precision/recall: Kynkäänniemi et al. 2019, k-NN
balls with k = 3). Within a run the reference set never changes, so what depends on it alone (the real samples'
k-NN radii, the real-real kernel sums of every KID subset) is computed once and reused by every evaluation:
periodic evaluations then cost a fraction of torch-fidelity's, which recomputes them each time.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor

KID_SUBSETS = 100  # torch-fidelity's default
KID_SEED = 2020  # torch-fidelity's default rng_seed: the same subsets as torch_fidelity.calculate_metrics
NEIGHBOURHOOD = 3  # k of the k-NN balls (torch-fidelity's prc_neighborhood)
CHUNK = 1000  # rows of a distance or kernel matrix computed at once (memory: CHUNK × reference size floats)


def cubic(products: Tensor, dim: int) -> Tensor:
    """The kernel (x·y / d + 1)³ from the products x·y (float32, as torch-fidelity computes them), in float64."""
    return products.double().div_(dim).add_(1).pow_(3)


def polynomial_kernel(x: Tensor, y: Tensor) -> Tensor:
    return cubic(x @ y.T, x.shape[1])


def subset_sums(x: Tensor, x_members: Tensor, y: Tensor, y_members: Tensor) -> Tensor:
    """For every subset s: Σ over a in subset s of x, b in subset s of y of k(x_a, y_b), the subsets given as 0/1
    membership rows (subsets × samples, float64): all subsets in a few matrix products, the kernel a chunk of rows
    of x at a time."""
    sums = torch.zeros(len(x_members), len(y), dtype=torch.float64)
    for start in range(0, len(x), CHUNK):
        sums += x_members[:, start : start + CHUNK] @ polynomial_kernel(x[start : start + CHUNK], y)
    return (sums * y_members).sum(dim=1)


def off_diagonal_sum(kernel: Tensor) -> float:
    return float(kernel.sum() - kernel.diagonal().sum())


def diagonal_sums(x: Tensor, members: Tensor) -> Tensor:
    """For every subset: Σ over its samples a of k(x_a, x_a)."""
    return members @ cubic((x * x).sum(dim=1), x.shape[1])


def membership(n: int, subsets: List[np.ndarray]) -> Tensor:
    rows = torch.zeros(len(subsets), n, dtype=torch.float64)
    for row, subset in zip(rows, subsets):
        row[torch.from_numpy(subset)] = 1.0
    return rows


def knn_radii(features: Tensor, k: int = NEIGHBOURHOOD) -> Tensor:
    """Each sample's distance to its k-th nearest other sample (itself being the nearest)."""
    # topk: the same values as kthvalue, three times sooner on a CPU.
    return torch.cat(
        [torch.cdist(chunk, features).topk(k + 1, dim=1, largest=False).values[:, k] for chunk in features.split(CHUNK)]
    )


class Reference:
    """Real features and what the estimators compute from them alone, kept for every later evaluation."""

    def __init__(self, features: Tensor):
        self.features = features.float()
        self.radii = knn_radii(self.features)
        self.kid_real_sums: Dict[Tuple[int, int, int], Tensor] = {}  # (generated count, subset size, subsets) -> Σ K_YY

    def kid(self, generated: Tensor, subset_size: int, subsets: int = KID_SUBSETS) -> Dict[str, float]:
        """kid_mean and kid_std over ``subsets`` random subsets of ``subset_size`` generated and real samples."""
        generated = generated.float()
        n_generated, n_real, m = len(generated), len(self.features), subset_size
        rng = np.random.RandomState(KID_SEED)
        # Drawn in torch-fidelity's order (a generated subset, then a real one): the real subsets depend only on the
        # generated count, so their kernel sums are computed once per run.
        drawn = [
            (rng.choice(n_generated, m, replace=False), rng.choice(n_real, m, replace=False)) for _ in range(subsets)
        ]
        x_members, y_members = membership(n_generated, [x for x, _ in drawn]), membership(n_real, [y for _, y in drawn])
        key = (n_generated, m, subsets)
        if key not in self.kid_real_sums:  # subset by subset: the reference set is often larger than a subset's square
            subsets_of_real = [self.features[torch.from_numpy(y)] for _, y in drawn]
            self.kid_real_sums[key] = torch.tensor(
                [off_diagonal_sum(polynomial_kernel(y, y)) for y in subsets_of_real], dtype=torch.float64
            )
        generated_sums = subset_sums(generated, x_members, generated, x_members) - diagonal_sums(generated, x_members)
        cross_sums = subset_sums(generated, x_members, self.features, y_members)
        estimates = (generated_sums + self.kid_real_sums[key]) / (m * (m - 1)) - 2 * cross_sums / (m * m)
        return {"kid_mean": estimates.mean().item(), "kid_std": estimates.std(unbiased=False).item()}

    def precision_recall(self, generated: Tensor) -> Dict[str, float]:
        """precision: the share of generated samples inside some real sample's k-NN ball; recall: the share of real
        samples inside some generated sample's ball."""
        generated = generated.float()
        generated_radii = knn_radii(generated)
        precise = torch.zeros(len(generated), dtype=torch.bool)
        recalled = torch.zeros(len(self.features), dtype=torch.bool)
        for start in range(0, len(generated), CHUNK):
            distances = torch.cdist(generated[start : start + CHUNK], self.features)
            precise[start : start + CHUNK] = (distances <= self.radii).any(dim=1)
            recalled |= (distances <= generated_radii[start : start + CHUNK, None]).any(dim=0)
        return {"precision": precise.float().mean().item(), "recall": recalled.float().mean().item()}

"""Whether G copies its training images, in the feature space of the image metrics' extractor.

FID against the training set rewards a G that reproduces its training images: with 100 training images it falls
while G memorises them. Two measures of data copying sit beside it, each from distances to the nearest training
image (``train``: images G trained on) and to the nearest held-out image (``heldout``: as many, of the split G
never saw):

- ``copy_fraction``: the share of generated samples nearer their nearest training image than their nearest held-out
  image. With training and held-out sets of one size from one distribution, a G that does not copy scores about
  0.5 (a sample is as likely to fall nearer either); copies of the training images score 1.
- ``copy_ct``: the C_T statistic of Meehan et al. 2020 ("A Non-Parametric Test to Detect Data-Copying in Generative
  Models"): the training features split into cells (k-means), in each cell a Mann-Whitney U test, as a z-score, of
  the generated samples' distances to their nearest training image against the held-out images', averaged over the
  cells weighted by their share of held-out images (cells with too few generated samples left out). About 0 for a
  G that generalises; well below 0 (-3 and less) where G's samples sit closer to the training images than new data
  does (copying); above 0 where they sit farther (underfitting).
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor

CELLS = 10  # k-means cells of the training features
MIN_SHARE = 0.2  # a cell counts where it holds at least this share of its fair part (1 / CELLS) of the samples


def nearest_distances(queries: Tensor, reference: Tensor, batch: int = 1024) -> Tensor:
    """The Euclidean distance from each query to its nearest reference point."""
    return torch.cat(
        [torch.cdist(queries[i : i + batch], reference).min(dim=1).values for i in range(0, len(queries), batch)]
    )


def kmeans(points: Tensor, k: int, seed: int = 0, iterations: int = 25) -> Tensor:
    """Lloyd's k-means from k points chosen by ``seed``; the centres (k, d)."""
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randperm(len(points), generator=generator)[:k]].clone()
    for _ in range(iterations):
        cell = torch.cdist(points, centres).argmin(dim=1)
        for index in range(len(centres)):
            members = points[cell == index]
            if len(members):
                centres[index] = members.mean(dim=0)
    return centres


def mann_whitney_z(x: Tensor, y: Tensor) -> float:
    """The z-score of the Mann-Whitney U statistic of ``x`` against ``y`` (below 0 where ``x`` tends to be smaller)."""
    n_x, n_y = len(x), len(y)
    ranks = torch.empty(n_x + n_y, dtype=torch.float64)
    ranks[torch.cat([x, y]).double().argsort()] = torch.arange(1, n_x + n_y + 1, dtype=torch.float64)
    u = float(ranks[:n_x].sum()) - n_x * (n_x + 1) / 2
    return (u - n_x * n_y / 2) / math.sqrt(n_x * n_y * (n_x + n_y + 1) / 12)


def copying(fake: Tensor, train: Tensor, heldout: Tensor, cells: int = CELLS, seed: int = 0) -> Dict[str, float]:
    """``copy_fraction`` and ``copy_ct`` of generated features ``fake`` against the features of the training images
    G trained on and of as many held-out images (each (n, d))."""
    fake, train, heldout = (x.double().flatten(1) for x in (fake, train, heldout))
    to_train, to_heldout = nearest_distances(fake, train), nearest_distances(fake, heldout)
    fraction = float((to_train < to_heldout).double().mean())
    centres = kmeans(train, min(cells, len(train)), seed)
    fake_cell, heldout_cell = torch.cdist(fake, centres).argmin(1), torch.cdist(heldout, centres).argmin(1)
    heldout_to_train = nearest_distances(heldout, train)
    weighted, weight = 0.0, 0.0
    for index in range(len(centres)):
        in_fake, in_heldout = fake_cell == index, heldout_cell == index
        enough = MIN_SHARE / len(centres)
        if in_fake.double().mean() < enough or in_heldout.double().mean() < enough or in_heldout.sum() < 2:
            continue
        share = float(in_heldout.double().mean())
        weighted += share * mann_whitney_z(to_train[in_fake], heldout_to_train[in_heldout])
        weight += share
    return {"copy_fraction": fraction, "copy_ct": weighted / weight if weight else float("nan")}

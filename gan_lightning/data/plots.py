"""Pictures of samples: image grids, 2-D scatter plots and 1-D histograms, written as PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np
from torch import Tensor


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(4, 4), dpi=100)


def save_image_grid(images: Tensor, path: Path, value_range: Tuple[float, float], row: Optional[int] = None) -> None:
    """A grid of images, ``row`` per row (square-ish by default), mapped from ``value_range`` to [0, 255]."""
    from torchvision.utils import save_image

    nrow = row or math.ceil(math.sqrt(len(images)))
    save_image(images.detach().float().cpu(), str(path), nrow=nrow, normalize=True, value_range=value_range, padding=2)


def save_scatter(points: Tensor, path: Path, centers: Tensor, limit: float, labels: Optional[Tensor] = None) -> None:
    """Samples as dots over the mixture's modes (crosses), on fixed axes so frames compare; coloured by label."""
    plt, (fig, ax) = _figure()
    xy = points.detach().float().cpu().numpy()
    colours = labels.cpu().numpy() if labels is not None else "tab:blue"
    ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0.5, c=colours, cmap="tab10" if labels is not None else None)
    c = centers.numpy()
    ax.scatter(c[:, 0], c[:, 1], s=40, marker="x", color="tab:red")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_histogram(values: Tensor, path: Path, density: Callable[[np.ndarray], np.ndarray], span: Tuple[float, float]) -> None:
    """A histogram of 1-D samples over the data's density."""
    plt, (fig, ax) = _figure()
    x = np.linspace(*span, 400)
    ax.plot(x, density(x), color="black", label="p_data")
    ax.hist(values.detach().float().cpu().numpy().ravel(), bins=60, range=span, density=True, alpha=0.6, color="tab:green", label="p_g")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

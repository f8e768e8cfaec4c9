"""Pictures of samples: image grids, 2-D scatter plots and 1-D histograms, written as PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Tuple

import numpy as np

from gan_lightning.lazy import pyplot

if TYPE_CHECKING:
    from torch import Tensor


def _figure():
    plt = pyplot()

    return plt, plt.subplots(figsize=(4, 4), dpi=100)


def save_image_grid(
    images: Tensor, path: Path, value_range: Tuple[float, float], row: Optional[int] = None, size: int = 0
) -> None:
    """A grid of images, ``row`` per row (square-ish by default), mapped from ``value_range`` to [0, 255], enlarged by
    the least whole factor that makes its longer side at least ``size`` pixels (each pixel a square block: nothing
    is smoothed that the generator did not draw)."""
    from torchvision.utils import make_grid, save_image

    nrow = row or math.ceil(math.sqrt(len(images)))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=value_range, padding=2)
    factor = max(1, math.ceil(size / max(grid.shape[-2:])))
    save_image(grid.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2), str(path))


def save_scatter(
    points: Tensor,
    path: Path,
    centers: Tensor,
    limit: float,
    labels: Optional[Tensor] = None,
    title: Optional[str] = None,
) -> None:
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
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_histogram(
    values: Tensor,
    path: Path,
    density: Callable[[np.ndarray], np.ndarray],
    span: Tuple[float, float],
    discriminator: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    bins: int = 60,
    points: int = 400,
    title: Optional[str] = None,
) -> None:
    """A histogram of 1-D samples over the data's density, with ``discriminator`` (D as a function of x) drawn
    over the same range when given. D's curve is also written beside the PNG as CSV (same name, ``.csv``):
    ``x``, ``p_data``, ``p_g`` (the histogram's density at x), ``p_g_kde`` (a Gaussian kernel estimate, Scott's
    bandwidth) and ``d``, so that frames can be compared with D* = p_data / (p_data + p_g)."""
    plt, (fig, ax) = _figure()
    x = np.linspace(*span, points)
    samples = values.detach().double().cpu().numpy().ravel()
    ax.plot(x, density(x), color="black", label="p_data")
    ax.hist(samples, bins=bins, range=span, density=True, alpha=0.6, color="tab:green", label="p_g")
    if discriminator is not None:
        d = discriminator(x)
        # Probabilities share the densities' axis, as in the paper's figure; unbounded critic scores get their own.
        if d.min() >= 0.0 and d.max() <= 1.0:
            ax.plot(x, d, color="tab:blue", linestyle="--", label="D(x)")
        else:
            twin = ax.twinx()
            twin.plot(x, d, color="tab:blue", linestyle="--", label="D(x)")
            twin.set_ylabel("D(x) (score)")
        write_curve(path.with_suffix(".csv"), x, density(x), samples, span, bins, d)
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_curve(
    path: Path,
    x: np.ndarray,
    p_data: np.ndarray,
    samples: np.ndarray,
    span: Tuple[float, float],
    bins: int,
    d: np.ndarray,
) -> None:
    counts, edges = np.histogram(samples, bins=bins, range=span)
    density_g = counts / (
        len(samples) * (edges[1] - edges[0])
    )  # of all samples: mass outside the range is not renormalised in
    p_g = density_g[np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)]
    bandwidth = max(samples.std(), 1e-12) * len(samples) ** (-1 / 5)  # Scott's rule in one dimension
    kernels = np.exp(-0.5 * ((x[:, None] - samples[None, :]) / bandwidth) ** 2) / (bandwidth * math.sqrt(2 * math.pi))
    table = np.column_stack([x, p_data, p_g, kernels.mean(axis=1), d])
    np.savetxt(path, table, delimiter=",", header="x,p_data,p_g,p_g_kde,d", comments="", fmt="%.6g")

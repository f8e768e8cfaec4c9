"""Synthetic data generated on the fly from the run's seed: 2-D Gaussian mixtures and a 1-D Gaussian."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Dict, Optional, Tuple

import numpy as np
from omegaconf import MISSING

from gan_lightning.data.base import DataConfig
from gan_lightning.data.plots import save_histogram, save_scatter
from gan_lightning.errors import require_positive
from gan_lightning.lazy import torch

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class GeneratedData(DataConfig):
    """``num_samples`` points drawn from a known distribution of spread ``std``, from the run's seed."""

    std: float = MISSING
    num_samples: int = MISSING

    # Settings that must be positive, with what is allowed: these and each kind's own.
    positive: ClassVar[Dict[str, str]] = {
        "std": "a positive number",
        "num_samples": "a positive number of training points",
    }

    @property
    def known_size(self) -> int:
        return self.num_samples

    def check(self) -> None:
        super().check()
        for name, allowed in {**GeneratedData.positive, **self.positive}.items():
            require_positive(f"data.{name}", getattr(self, name), allowed)


@dataclass
class GaussianMixture2D(GeneratedData):
    """Equal-weight isotropic 2-D Gaussians around fixed centres (the modes), as in VEEGAN and PacGAN."""

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        return (2,)

    @property
    def centers(self) -> Tensor:
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.centers)  # the label of a point is its mode

    def load_labelled(self, seed: int) -> Tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(seed)
        centers = self.centers
        which = torch.randint(len(centers), (self.num_samples,), generator=generator)
        return centers[which] + self.std * torch.randn(self.num_samples, 2, generator=generator), which

    def save_samples(self, samples: Tensor, path: Path, labels: Optional[Tensor] = None, discriminator=None,
                     title: Optional[str] = None, size: int = 0) -> None:  # fmt: skip
        limit = float(self.centers.abs().max()) * 1.5 + 3 * self.std
        save_scatter(samples, path, self.centers, limit, labels, title)


@dataclass
class Ring(GaussianMixture2D, name="ring"):
    """``modes`` Gaussians evenly spaced on a circle of ``radius`` (ring8: 8 modes, radius 1, std 0.01)."""

    modes: int = MISSING
    radius: float = MISSING
    positive: ClassVar[Dict[str, str]] = {"modes": "a positive number of modes", "radius": "a positive number"}

    @property
    def centers(self) -> Tensor:
        angles = torch.arange(self.modes, dtype=torch.float64) * (2 * math.pi / self.modes)
        return (self.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)).float()


@dataclass
class Grid(GaussianMixture2D, name="grid"):
    """``side``² Gaussians on a square grid centred at the origin (grid25: 5 × 5 at {−4, −2, 0, 2, 4}², std 0.05)."""

    positive: ClassVar[Dict[str, str]] = {"side": "a positive number of modes per row", "spacing": "a positive number"}
    side: int = MISSING
    spacing: float = MISSING

    @property
    def centers(self) -> Tensor:
        ticks = (torch.arange(self.side, dtype=torch.float32) - (self.side - 1) / 2) * self.spacing
        return torch.cartesian_prod(ticks, ticks)


@dataclass
class Gaussian1D(GeneratedData, name="gaussian1d"):
    """A 1-D normal distribution N(mean, std²): the setting of Goodfellow et al. 2014, Figure 1."""

    mean: float = MISSING

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        return (1,)

    def load_labelled(self, seed: int) -> Tuple[Tensor, None]:
        return self.mean + self.std * torch.randn(
            self.num_samples, 1, generator=torch.Generator().manual_seed(seed)
        ), None

    def density(self, x: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * ((x - self.mean) / self.std) ** 2) / (self.std * math.sqrt(2 * math.pi))

    def save_samples(self, samples: Tensor, path: Path, labels: Optional[Tensor] = None, discriminator=None,
                     title: Optional[str] = None, size: int = 0) -> None:  # fmt: skip
        span = (self.mean - 5 * self.std, self.mean + 5 * self.std)
        curve = None
        if discriminator is not None:  # D(x) as a function over the data's range (Goodfellow et al. 2014, Figure 1)
            curve = lambda x: discriminator(torch.from_numpy(x).float().unsqueeze(1)).cpu().double().numpy()  # noqa: E731
        save_histogram(samples, path, self.density, span, curve, title=title)

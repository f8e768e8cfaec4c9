"""Datasets: each is a config class that knows its sample shape before loading, loads itself into memory
as one tensor, and draws its own samples for inspection (image grid, scatter plot or histogram)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import torch
from omegaconf import MISSING
from torch import Tensor

from gan_lightning.errors import require_positive
from gan_lightning.registry import Registered


@dataclass
class DataConfig(Registered, group="data"):
    """Settings every dataset shares."""

    batch_size: int = MISSING

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        """The shape of one sample, known without loading the data."""
        raise NotImplementedError

    @property
    def value_range(self) -> Optional[Tuple[float, float]]:
        """The interval the samples lie in, or None for unbounded data."""
        return None

    def check(self) -> None:
        require_positive("data.batch_size", self.batch_size, "a positive number of samples per batch")

    def prepare(self) -> None:
        """Make sure the data can be read (find it, or download it where allowed) before a run writes anything."""

    def load(self, seed: int) -> Tensor:
        """All training samples as one float tensor of shape (N, *sample_shape)."""
        raise NotImplementedError

    def save_samples(self, samples: Tensor, path: Path) -> None:
        """Write a picture of ``samples`` (generated or real) to ``path`` as PNG."""
        raise NotImplementedError


# Importing the datasets registers their schemas.
from gan_lightning.data import idx, toy  # noqa: E402,F401

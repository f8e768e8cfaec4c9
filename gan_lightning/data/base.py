"""The settings every data set shares, and what each knows before loading: its sample shape, value range, labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from omegaconf import MISSING

from gan_lightning.errors import UserError, require_positive
from gan_lightning.registry import Registered, implementation

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch import Tensor

Discriminate = Callable[["Tensor"], "Tensor"]  # samples -> D's outputs (probabilities for classifier objectives)


def batch_too_large(samples: int, samples_per_step: int, processes: int = 1) -> UserError:
    """A training step needs more samples than the data set has (on each of ``processes``)."""
    on_each = f" on each of {processes} processes" if processes > 1 else ""
    return UserError(
        f"data.batch_size × trainer.d_steps = {samples_per_step} samples per training step{on_each} is not allowed: "
        f"the data set has {samples} samples, so at most {samples // processes}."
    )


@dataclass
class DataConfig(Registered, group="data"):
    """Settings every dataset shares."""

    batch_size: int = MISSING

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        """The shape of one sample, known without loading the data."""
        raise NotImplementedError

    @property
    def cache_key(self) -> str:
        """A name for this data set in caches of things derived from it (feature extractors, real-data features)."""
        return type(self).__name__.lower()

    @property
    def known_size(self) -> Optional[int]:
        """The number of training samples when the settings alone say it (synthetic data); None until loaded."""
        return None

    @property
    def value_range(self) -> Optional[Tuple[float, float]]:
        """The interval the samples lie in, or None for unbounded data."""
        return None

    def check(self) -> None:
        require_positive("data.batch_size", self.batch_size, "a positive number of samples per batch")

    def domain_extractor_problem(self) -> Optional[str]:
        """Why a domain feature extractor (a classifier of this data's labels) cannot be trained on it, or None."""
        return None

    def training_subset(self) -> Optional[dict]:
        """The part of the data set a run trains on, where it is not the whole (data.subset), for its summary."""
        return None

    def heldout_images(self, n: int) -> Optional[Tuple[Tensor, Optional[Tensor]]]:
        """``n`` real samples the run does not train on (a held-out split), with labels; None where there is none."""
        return None

    def prepare(self) -> None:
        """Make sure the data can be read (find it, or download it where allowed) before a run writes anything."""

    @property
    def num_classes(self) -> int:
        """The number of class labels of the training samples; 0 for unlabelled data."""
        return 0

    def datamodule(self, samples_per_step: int, seed: int, labelled: bool = False) -> pl.LightningDataModule:
        """The Lightning data module serving training batches of ``samples_per_step`` samples (and labels when ``labelled``)."""
        return implementation("gan_lightning.data.batches.InMemoryDataModule")(self, samples_per_step, seed, labelled)

    def load(self, seed: int) -> Tensor:
        """All training samples as one float tensor of shape (N, *sample_shape)."""
        return self.load_labelled(seed)[0]

    def load_labelled(self, seed: int) -> Tuple[Tensor, Optional[Tensor]]:
        """All training samples and their int64 labels (None for unlabelled data)."""
        raise NotImplementedError

    def labelled_images(self, split: str) -> Tuple[Tensor, Tensor]:
        """All images of ``split`` as uint8 (N, C, H, W) with their int64 labels (image data sets only)."""
        raise UserError(
            f"{type(self).__name__} data has no labelled images; image metrics need an image data set such as fashion_mnist."
        )

    def save_samples(
        self,
        samples: Tensor,
        path: Path,
        labels: Optional[Tensor] = None,
        discriminator: Optional[Discriminate] = None,
        title: Optional[str] = None,
        size: int = 0,
    ) -> None:
        """Write a picture of ``samples`` (generated or real) to ``path`` as PNG; ``labels`` group them by class.
        ``discriminator`` maps samples to D's outputs; data whose space can be drawn whole (1-D) draws it too.
        ``title`` heads a plot (``step 500``); ``size`` is the least width of an image grid, in pixels."""
        raise NotImplementedError

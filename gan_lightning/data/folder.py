"""Training batches of ``data=image_folder``: image files decoded on access, in DataLoader worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_lightning.data.base import batch_too_large
from gan_lightning.data.images import decode, scale_uint8

if TYPE_CHECKING:
    from gan_lightning.data.base import batch_too_large
from gan_lightning.data.images import ImageFolder


class FolderImages(Dataset):
    """Decodes files on access (in DataLoader workers); ``labels`` index the class sub-folders."""

    def __init__(self, files: List[Path], labels: List[int], size: int, channels: int, scale: str, labelled: bool):
        self.files, self.labels, self.size, self.channels, self.scale = files, labels, size, channels, scale
        self.labelled = labelled

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> Tensor:
        return scale_uint8(decode(self.files[index], self.size, self.channels), self.scale)

    def __getitem__(self, index: int):
        image = self.image(index)
        return (image, self.labels[index]) if self.labelled else image


class FolderDataModule(pl.LightningDataModule):
    """A shuffled DataLoader over image files, with worker processes, pinned memory and persistent workers."""

    def __init__(self, config: ImageFolder, samples_per_step: int, seed: int, labelled: bool):
        super().__init__()
        self.config, self.samples_per_step, self.seed, self.labelled = config, samples_per_step, seed, labelled
        self.dataset: Optional[FolderImages] = None

    def setup(self, stage: str) -> None:
        if self.dataset is None:
            files, labels = self.config.scan()
            self.dataset = FolderImages(
                files, labels, self.config.image_size, self.config.channels, self.config.scale, self.labelled
            )
        if len(self.dataset) < self.samples_per_step:
            raise batch_too_large(len(self.dataset), self.samples_per_step)

    def train_dataloader(self) -> DataLoader:
        workers = self.config.num_workers
        return DataLoader(
            self.dataset,
            batch_size=self.samples_per_step,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
        )

    def real_samples(self, n: int, seed: int) -> Tuple[Tensor, Optional[Tensor]]:
        order = [int(i) for i in torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(seed))[:n]]
        images = torch.stack([self.dataset.image(i) for i in order])
        return images, torch.tensor([self.dataset.labels[i] for i in order]) if self.labelled else None

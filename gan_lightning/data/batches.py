"""Training batches drawn by index from tensors held in memory: no per-item Dataset, no worker processes."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Tuple

import pytorch_lightning as pl
import torch
from torch import Tensor

from gan_lightning.data.base import batch_too_large


class TensorBatches:
    """Shuffled batches of rows of ``data``: each epoch is a fresh permutation, split across ranks.

    The permutation of epoch ``e`` is drawn from ``seed + e`` and the position inside it is saved in
    checkpoints (``state_dict``), so a resumed run sees exactly the batches it would have seen.
    """

    def __init__(
        self,
        data: Tensor,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        labels: Optional[Tensor] = None,
    ):
        self.data, self.labels, self.batch_size, self.seed = data, labels, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0
        if len(self) == 0:
            raise batch_too_large(len(data), batch_size, world_size)

    def __len__(self) -> int:
        return len(self.data) // (self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[Tensor]:
        # An epoch ends with its last batch served, not when the iterator is asked once more: Lightning never
        # asks a loader of known length for more than its length, and the next iter() must start a full epoch.
        if self.position >= len(self):
            self.epoch, self.position = self.epoch + 1, 0
        order = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(self.seed + self.epoch))
        mine = order[self.rank :: self.world_size].to(self.data.device)
        while self.position < len(self):
            start = self.position * self.batch_size
            self.position += 1
            index = mine[start : start + self.batch_size]
            yield self.data[index] if self.labels is None else (self.data[index], self.labels[index])

    def state_dict(self) -> Dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.epoch, self.position = state["epoch"], state["position"]


class InMemoryDataModule(pl.LightningDataModule):
    """Serves a dataset loaded into memory; each training batch holds ``samples_per_step`` samples,
    with their labels when ``labelled`` (class-conditional training)."""

    def __init__(self, data_config, samples_per_step: int, seed: int, labelled: bool = False):
        super().__init__()
        self.config, self.samples_per_step, self.seed, self.labelled = data_config, samples_per_step, seed, labelled
        self.data: Tensor | None = None
        self.labels: Tensor | None = None

    def setup(self, stage: str) -> None:
        if self.data is None:
            self.data, labels = self.config.load_labelled(self.seed)
            self.labels = labels if self.labelled else None
        if len(self.data) < self.samples_per_step:
            raise batch_too_large(len(self.data), self.samples_per_step)

    def train_dataloader(self) -> TensorBatches:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        if self.trainer is not None and self.trainer.strategy.root_device.type == "cuda":
            # Small data sets live on the GPU: batches are drawn by index there, with no copy per step.
            device = self.trainer.strategy.root_device
            self.data = self.data.to(device)
            self.labels = self.labels.to(device) if self.labels is not None else None
        return TensorBatches(self.data, self.samples_per_step, self.seed, rank, world, self.labels)

    def real_samples(self, n: int, seed: int) -> Tuple[Tensor, Optional[Tensor]]:
        """``n`` training samples chosen by ``seed``, with their labels when served (for D-output histograms)."""
        index = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(seed))[:n]
        return self.data[index], self.labels[index] if self.labels is not None else None

"""The members' training data: each member's batches from its own seeded data module, laid out (batch, member, ...)."""

from __future__ import annotations

from typing import Dict, Sequence

import pytorch_lightning as pl
import torch

from gan_lightning.sweeps.vectorized.layers import MEMBER_DIM


class MemberBatches:
    """Each member's training batches, laid out (batch, member, ...)."""

    def __init__(self, loaders: Sequence):
        self.loaders = loaders

    def __len__(self) -> int:
        return len(self.loaders[0])

    def __iter__(self):
        for batches in zip(*self.loaders):
            yield torch.stack(batches, dim=MEMBER_DIM)

    def state_dict(self) -> Dict:
        return {"members": [loader.state_dict() for loader in self.loaders]}

    def load_state_dict(self, state: Dict) -> None:
        for loader, own in zip(self.loaders, state["members"]):
            loader.load_state_dict(own)


class MemberDataModule(pl.LightningDataModule):
    """The members' data modules, each with its own seed, serving MemberBatches."""

    def __init__(self, datamodules: Sequence[pl.LightningDataModule]):
        super().__init__()
        self.datamodules = datamodules

    def setup(self, stage: str) -> None:
        for datamodule in self.datamodules:
            datamodule.setup(stage)

    def train_dataloader(self) -> MemberBatches:
        for datamodule in self.datamodules:
            datamodule.trainer = self.trainer
        return MemberBatches([datamodule.train_dataloader() for datamodule in self.datamodules])

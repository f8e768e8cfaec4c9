"""Faults injected into real runs, for tests of what survives them."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger


class EndTrackerRun(pl.Callback):
    """Finishes the W&B run in the middle of training, as a crashed tracker service would leave it."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.steps_done == self.at_step:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.finish()

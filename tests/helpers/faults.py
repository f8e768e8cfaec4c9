"""Faults injected into real runs, for tests of what survives them."""

from __future__ import annotations

import os
import signal
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from gan_lightning.tracking.service import wandb_service_processes


class EndTrackerRun(pl.Callback):
    """Finishes the W&B run in the middle of training, as a crashed tracker service would leave it."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.steps_done == self.at_step:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.finish()


class FreezeTracker(pl.Callback):
    """Stops W&B's service process (SIGSTOP) after step ``at_step``: a tracker that no longer answers, as a hung
    service or a stalled file system leaves it."""

    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.steps_done == self.at_step:
            services = wandb_service_processes()
            assert services, "no W&B service process to stop"
            for pid in services:
                os.kill(pid, signal.SIGSTOP)


class PoisonDiscriminator(pl.Callback):
    """Sets one of D's weights to NaN on one process before step ``at_step``: that process's D loss of the step is
    NaN, and the gradient all-reduce carries the NaN to the other processes' weights."""

    def __init__(self, at_step: int, rank: int):
        self.at_step, self.rank = at_step, rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.steps_done + 1 == self.at_step and trainer.global_rank == self.rank:
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).view(-1)[0] = float("nan")


class SlowSteps(pl.Callback):
    """Every training step takes at least ``seconds`` longer: a run lasts long enough, on any machine, for another
    process to meet it."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        time.sleep(self.seconds)

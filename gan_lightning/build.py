"""Builders: from the typed config to the objects a run needs. Only this module reads the config tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl

from gan_lightning.callbacks import PeriodicCheckpoint, ProgressLog, SampleGrid
from gan_lightning.checkpoints import AtomicCheckpointIO
from gan_lightning.config import Config
from gan_lightning.data.batches import InMemoryDataModule
from gan_lightning.module import GAN
from gan_lightning.tracking import build_loggers


@dataclass
class RunContext:
    """Where a run writes and how trackers name it."""

    run_dir: Path
    name: str
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    hparams: Dict[str, Any] = field(default_factory=dict)


def build_datamodule(cfg: Config) -> InMemoryDataModule:
    return InMemoryDataModule(cfg.data, samples_per_step=cfg.data.batch_size * cfg.trainer.d_steps, seed=cfg.seed)


def build_module(cfg: Config) -> GAN:
    generator, discriminator = cfg.model.build(cfg.data.sample_shape, cfg.data.value_range, cfg.objective.per_sample_d)
    return GAN(
        generator,
        discriminator,
        cfg.objective,
        g_optimizer=cfg.optimizer.g,
        d_optimizer=cfg.optimizer.d,
        d_steps=cfg.trainer.d_steps,
        g_steps=cfg.trainer.g_steps,
        max_steps=cfg.trainer.max_steps,
        r1_gamma=cfg.regularization.r1_gamma,
        r1_interval=cfg.regularization.r1_interval,
        ema_decay=cfg.regularization.ema_decay,
        ema_start_step=cfg.regularization.ema_start_step,
        on_nan=cfg.trainer.on_nan,
    )


def build_callbacks(cfg: Config, run_dir: Path) -> List[pl.Callback]:
    callbacks: List[pl.Callback] = [
        SampleGrid(cfg.data, run_dir / "samples", cfg.callbacks.samples_every_n_steps, cfg.callbacks.num_samples, cfg.seed),
        PeriodicCheckpoint(run_dir / "checkpoints", cfg.callbacks.checkpoint_every_n_steps, cfg.callbacks.keep_checkpoints),
        ProgressLog(cfg.callbacks.progress_every_n_steps, cfg.trainer.max_steps),
    ]
    metrics = cfg.metrics.callback(cfg.data)
    if metrics is not None:
        callbacks.append(metrics)
    return callbacks


def build_trainer(cfg: Config, context: RunContext) -> pl.Trainer:
    t = cfg.trainer
    return pl.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        # The GAN module stops at trainer.max_steps training steps; Lightning's own step counter counts
        # every optimizer step (d_steps + g_steps per training step), so it is not used as the limit.
        max_steps=-1,
        max_epochs=-1,
        logger=build_loggers(cfg.logger, context.run_dir, context.name, context.group, context.tags, context.hparams) or False,
        callbacks=build_callbacks(cfg, context.run_dir),
        log_every_n_steps=t.log_every_n_steps,
        deterministic=t.deterministic,
        default_root_dir=str(context.run_dir),
        enable_progress_bar=False,
        enable_checkpointing=False,  # PeriodicCheckpoint writes checkpoints/last.ckpt
        plugins=[AtomicCheckpointIO()],
        num_sanity_val_steps=0,
    )

"""Builders: from the typed config to the objects a run needs. Only this module reads the config tree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.plugins.environments import SLURMEnvironment
from torch import nn

from gan_lightning.adapter.ddp import build_strategy
from gan_lightning.adapter.steploop import build_profiler, settle_per_step_questions
from gan_lightning.callbacks.discriminator_health import DiscriminatorHealth
from gan_lightning.callbacks.progress import ProgressLog
from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.checkpoints.resume import AtomicCheckpointIO
from gan_lightning.checkpoints.saving import History, PeriodicCheckpoint
from gan_lightning.runs.context import RunContext
from gan_lightning.runs.interrupt import StopOnSignal
from gan_lightning.runs.jobs import current_hydra_config, job_devices
from gan_lightning.tracking.loggers import build_loggers
from gan_lightning.training.module import GAN, StepSettings

if TYPE_CHECKING:
    from gan_lightning.config import Config


def build_datamodule(cfg: Config) -> pl.LightningDataModule:
    return cfg.data.datamodule(
        samples_per_step=cfg.data.batch_size * cfg.trainer.d_steps, seed=cfg.seed, labelled=cfg.model.conditional
    )


def with_speed_options(cfg: Config, generator: nn.Module, discriminator: nn.Module) -> Tuple[nn.Module, nn.Module]:
    """G and D in the memory format and compiled as trainer.channels_last and trainer.compile ask."""
    if cfg.trainer.channels_last and len(cfg.data.sample_shape) == 3:
        generator, discriminator = (
            generator.to(memory_format=torch.channels_last),
            discriminator.to(memory_format=torch.channels_last),
        )
    if cfg.trainer.compile:
        # In place (nn.Module.compile), so parameter names and checkpoints stay those of the plain networks.
        generator.compile()
        discriminator.compile()
    return generator, discriminator


def build_networks(cfg: Config) -> Tuple[nn.Module, nn.Module]:
    """The configured G and D, drawing their initial weights from torch's global generator."""
    num_classes = cfg.data.num_classes if cfg.model.conditional else 0
    generator, discriminator = cfg.model.build(
        cfg.data.sample_shape, cfg.data.value_range, cfg.objective.per_sample_d, num_classes
    )
    return with_speed_options(cfg, generator, discriminator)


def module_settings(cfg: Config) -> Dict[str, Any]:
    """What the GAN module takes besides its networks: the objective, the optimizers and how it trains."""
    trainer, regularization = cfg.trainer, cfg.regularization
    settings = StepSettings(
        d_steps=trainer.d_steps, g_steps=trainer.g_steps, updates=trainer.updates, g_fakes=trainer.g_fakes, max_steps=trainer.max_steps,
        d_batch_stats=cfg.model.d_batch_stats, r1_gamma=regularization.r1_gamma, r1_interval=regularization.r1_interval,
        ema_decay=regularization.ema_decay, ema_start_step=regularization.ema_start_step, on_nan=trainer.on_nan,
        max_skipped_fraction=trainer.max_skipped_fraction, fast_path=trainer.fast_path, cuda_graph=trainer.cuda_graph,
    )  # fmt: skip
    return dict(objective=cfg.objective, g_optimizer=cfg.optimizer.g, d_optimizer=cfg.optimizer.d, settings=settings,
                augment=cfg.augment.build())  # fmt: skip


def build_module(cfg: Config, module_class: type = GAN) -> GAN:
    """The configured GAN (``module_class``: GAN or a subclass of it)."""
    return module_class(*build_networks(cfg), **module_settings(cfg))


def build_callbacks(cfg: Config, context: RunContext) -> List[pl.Callback]:
    run_dir = context.run_dir
    metrics = cfg.metrics.callback(cfg.data, cfg.seed)
    # Callbacks run in this order at every step: metrics first, so the progress line shows this step's values.
    kept = History(cfg.callbacks.keep_every_n_steps, cfg.callbacks.keep_limit, cfg.callbacks.keep_best)
    checkpoint = PeriodicCheckpoint(
        run_dir, cfg.callbacks.checkpoint_every_n_steps, kept, context.config, context.run_id
    )
    reporter = context.trial.callback(cfg.optimized_metric) if context.trial is not None else None
    callbacks: List[pl.Callback] = [
        *([metrics] if metrics is not None else []),
        *([reporter] if reporter is not None else []),  # right after the metrics: it reports what they measured
        SampleGrid(
            cfg.data,
            run_dir / "samples",
            cfg.callbacks.samples_every_n_steps,
            cfg.callbacks.num_samples,
            cfg.seed,
            cfg.callbacks.samples_size,
        ),
        *cfg.augment.callbacks(),  # before the checkpoint: it saves the p of the step it checkpoints
        DiscriminatorHealth(cfg.data, cfg.callbacks.d_health_every_n_steps),
        checkpoint,
    ]
    if cfg.callbacks.progress_every_n_steps > 0:  # 0: no progress lines or bar, and no call at every step
        callbacks.append(ProgressLog(cfg.callbacks.progress_every_n_steps, cfg.trainer.max_steps))
    callbacks.extend(instantiate(spec) for spec in cfg.callbacks.extra)
    callbacks.append(StopOnSignal(checkpoint))  # last: a stop signal ends the step after everything else it does
    return callbacks


def cluster_plugins() -> List[Any]:
    # Under SLURM, submitit requeues preempted and timed-out jobs (hydra/launcher=slurm) and the run resumes from
    # checkpoints/last.ckpt; Lightning's own requeue (SIGUSR1, hpc_ckpt_*.ckpt) would be a second, competing one.
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def build_trainer(
    cfg: Config, context: RunContext, logger: Any = None, callbacks: Optional[List[pl.Callback]] = None
) -> pl.Trainer:
    """The run's trainer; ``logger`` and ``callbacks`` replace the run's own (a vectorized group's members have theirs)."""
    t = cfg.trainer
    if logger is None:
        logger = (
            build_loggers(
                cfg.logger,
                context.run_dir,
                context.run_id,
                context.resume_step,
                context.name,
                context.group,
                context.tags,
                hparams=context.config,
            )
            or False
        )
    trainer = pl.Trainer(
        accelerator=t.accelerator,
        devices=job_devices(current_hydra_config(), t.accelerator, t.devices),
        num_nodes=t.num_nodes,
        strategy=build_strategy(t.strategy),
        sync_batchnorm=t.sync_batchnorm,
        precision=t.precision,
        # The GAN module stops at trainer.max_steps training steps; Lightning's own step counter counts
        # every optimizer step (d_steps + g_steps per training step), so it is not used as the limit.
        max_steps=-1,
        max_epochs=-1,
        logger=logger,
        callbacks=build_callbacks(cfg, context) if callbacks is None else callbacks,
        log_every_n_steps=t.log_every_n_steps,
        deterministic=t.deterministic,
        default_root_dir=str(context.run_dir),
        enable_progress_bar=False,
        enable_model_summary=cfg.verbose,  # Lightning's table of the networks' sizes
        enable_checkpointing=False,  # PeriodicCheckpoint writes checkpoints/last.ckpt
        plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        num_sanity_val_steps=0,
        profiler=build_profiler(t.profiler, context.run_dir, t.fast_path),
    )
    return settle_per_step_questions(trainer) if t.fast_path else trainer

"""What a run does once its settings pass their checks: find its data and extractors, build the networks, choose
the checkpoint it resumes from, train, and record what it reached."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig

from gan_lightning.checkpoints.resume import Resume, check_compatible, select_resume
from gan_lightning.metrics.evaluation import best_evaluation, latest_evaluation
from gan_lightning.runs.build import build_datamodule, build_module, build_trainer
from gan_lightning.runs.context import RunContext
from gan_lightning.runs.directory import continues_own_run
from gan_lightning.runs.interrupt import StopOnSignal
from gan_lightning.runs.jobs import job_threads
from gan_lightning.runs.summary import machine, read_summary, scalar_metrics
from gan_lightning.tracking.loggers import finish_wandb
from gan_lightning.training.module import GAN
from gan_lightning.training.state import stored_run_id

if TYPE_CHECKING:
    from gan_lightning.config import Config

log = logging.getLogger("gan_lightning")


@dataclass
class Prepared:
    """Everything a run needs before it writes into its directory, each part checked."""

    datamodule: pl.LightningDataModule
    module: GAN
    resume: Optional[Resume]


def prepare(config: Config, context: RunContext) -> Prepared:
    """Find the data, the metrics' extractors and the checkpoint to resume from, and build the networks: every
    reason to refuse the run comes up here, before its directory is touched."""
    config.data.prepare()
    config.metrics.prepare(config.data)
    resume = select_resume(config.resume, context.run_dir)
    threads = job_threads(HydraConfig.get(), config.trainer.num_threads)
    if threads is not None:
        torch.set_num_threads(threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config)
    datamodule.setup("fit")  # reads the data now: a damaged file is refused here, not mid-run
    module = build_module(config)
    if resume is not None:
        check_compatible(resume, module, context.config)
    return Prepared(datamodule, module, resume)


def train(config: Config, context: RunContext, prepared: Prepared, summary: Dict[str, Any]) -> None:
    resume, module = prepared.resume, prepared.module
    if resume is not None:
        if resume.steps_done >= config.trainer.max_steps:
            log.info(
                f"{resume.path} is at step {resume.steps_done}, trainer.max_steps={config.trainer.max_steps}: nothing left to train"
            )
            summary.update(status="completed", global_step=resume.steps_done, metrics=previous_metrics(context.run_dir))
            return
        log.info(f"resuming from {resume.path} at step {resume.steps_done}")
    trainer = build_trainer(config, context)
    stop = next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))
    try:
        with stop.installed(module):
            trainer.fit(
                module, datamodule=prepared.datamodule, ckpt_path=resume.path if resume else None, weights_only=True
            )
    finally:
        record_outcome(summary, config, trainer, module, stop.checkpoint, tags=[s for s in [ended_as(trainer)] if s])
    summary["status"] = ended_as(trainer) or "completed"


def ended_as(trainer: Any) -> Optional[str]:
    """How a callback that stopped the run before trainer.max_steps names its end ("pruned": its search's pruner)."""
    return next((c.ended_as for c in trainer.callbacks if getattr(c, "ended_as", None)), None)


def record_outcome(
    summary: Dict[str, Any], config: Config, trainer: Any, module: GAN, checkpoint: Any, tags: Sequence[str] = ()
) -> None:
    """What the run reached, into its summary, and its W&B run closed (with ``tags`` added): the step, the latest
    values, the best checkpoint."""
    summary["global_step"] = module.steps_done
    subset = config.data.training_subset()
    if subset is not None:
        summary["training_subset"] = subset
    quality, protocol, evaluation_seconds = latest_evaluation(trainer)
    summary["metrics"] = scalar_metrics({**trainer.callback_metrics, **quality})
    if protocol:
        summary["metrics_protocol"] = protocol  # how its sample-quality metrics were computed
        summary["evaluation_s"] = round(evaluation_seconds, 3)  # of wall_time_s: the cost of measuring sample quality
    if config.trainer.on_nan == "skip":
        summary["skipped_updates"] = module.nonfinite.skipped
    best = best_evaluation(trainer, module)
    if best:
        # As the W&B summary has it: each metric's best periodic value and its step, with that protocol.
        summary["metrics_best"] = {
            name: entry if name == "protocol" else {**scalar_metrics({"value": entry["value"]}), "step": entry["step"]}
            for name, entry in best.items()
        }
    summary["wandb_dir"] = finish_wandb(trainer.loggers, protocol, best, config.logger.finish_timeout_s, tags)
    summary["machine"] = {
        **machine(),
        "processes": trainer.world_size,
    }  # beside wall_time_s: what that time was spent on
    best = checkpoint.best_record()
    if best is not None:
        summary["best"] = best


def previous_metrics(run_dir: Path) -> Dict[str, Any]:
    try:
        return read_summary(run_dir).get("metrics", {})
    except (OSError, ValueError):
        return {}


def own_run_id(resume: Optional[Resume], run_dir: Path) -> Optional[str]:
    """The run id a checkpoint of this run directory carries."""
    return stored_run_id(resume.checkpoint) if resume is not None and continues_own_run(resume.path, run_dir) else None

"""``python -m gan_lightning.run [overrides] [-m]``: compose the config, build, train, write summary.json.

Returns the configured ``optimized_metric`` to Hydra sweepers.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_lightning.build import RunContext, build_datamodule, build_module, build_trainer
from gan_lightning.callbacks import Interrupted, StopOnSignal
from gan_lightning.checkpoints import Resume, check_compatible, select_resume, stored_run_id
from gan_lightning.config import CONF_DIR, Config, to_config, validate
from gan_lightning.distributed import process_rank, slurm_job
from gan_lightning.errors import Diverged, UserError
from gan_lightning.files import user_fixable
from gan_lightning.metrics import latest_evaluation
from gan_lightning.module import GAN
from gan_lightning.parallel import SweepStopped, is_parallel, job_threads, sweep_stopping
from gan_lightning.rundir import RunDirectory, job_log_name
from gan_lightning.summary import machine, read_summary, scalar_metrics, write_summary
from gan_lightning.sweep import reset_sweep_outcome, sweep_exit_code
from gan_lightning.tracking import finish_wandb, scrub_secrets

log = logging.getLogger("gan_lightning")


def quiet_dependencies() -> None:
    """Drop messages from dependencies that say nothing about this run (advertising, internal deprecations)."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The EMA copy of G is always in eval mode, on purpose.
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    # Epochs never end a run here (steps do), and logging counts steps across epochs.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # Jobs reach SLURM through hydra/launcher=slurm (submitit), which starts them inside the allocation.
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system but is not used.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(lambda record: not str(record.msg).startswith("💡"))

# Exit statuses. A user error (bad setting, missing data, unusable checkpoint, full disk) prints its message and
# no traceback; a bug of ours exits 1 with its traceback; a stop signal exits 128 + its number (143 for SIGTERM).
USER_ERROR_EXIT = 2
DIVERGED_EXIT = 3


def run_context(cfg: DictConfig, run_dir: Optional[Path] = None, task_overrides: Optional[List[str]] = None) -> RunContext:
    """Names for trackers, from Hydra's view of this job: overrides, sweep directory, chosen options (a member of a
    vectorized group passes its own directory and overrides)."""
    hc = HydraConfig.get()
    choices = hc.runtime.choices
    task_overrides = list(hc.overrides.task) if task_overrides is None else task_overrides
    overrides = [o for o in task_overrides if not o.startswith(("hydra.", "hydra/"))]
    default_name = "-".join(str(choices.get(g)) for g in ("model", "data", "objective"))
    name = cfg.logger.name or (",".join(overrides) if overrides else default_name)
    group = cfg.logger.group
    if group is None and hc.mode == RunMode.MULTIRUN:
        group = "_".join(Path(hc.sweep.dir).parts[-2:])  # one group per sweep
    tags = [str(choices.get(g)) for g in ("model", "data", "objective")] + list(cfg.logger.tags)
    config = scrub_secrets(OmegaConf.to_container(cfg, resolve=True))
    config["choices"] = {k: v for k, v in choices.items() if not k.startswith("hydra")}
    return RunContext(Path(run_dir or hc.runtime.output_dir), name=name, group=group, tags=tags, config=config)


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
        check_compatible(resume, module, context.config.get("choices", {}))
    return Prepared(datamodule, module, resume)


def train(config: Config, context: RunContext, prepared: Prepared, summary: Dict[str, Any]) -> None:
    resume, module = prepared.resume, prepared.module
    if resume is not None:
        if resume.steps_done >= config.trainer.max_steps:
            log.info(f"{resume.path} is at step {resume.steps_done}, trainer.max_steps={config.trainer.max_steps}: nothing left to train")
            summary.update(status="completed", global_step=resume.steps_done, metrics=previous_metrics(context.run_dir))
            return
        log.info(f"resuming from {resume.path} at step {resume.steps_done}")
    trainer = build_trainer(config, context)
    stop = next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))
    try:
        with stop.installed(module):
            trainer.fit(module, datamodule=prepared.datamodule, ckpt_path=resume.path if resume else None, weights_only=True)
    finally:
        record_outcome(summary, config, trainer, module, stop.checkpoint)
    summary["status"] = "completed"


def record_outcome(summary: Dict[str, Any], config: Config, trainer: Any, module: GAN, checkpoint: Any) -> None:
    """What the run reached, into its summary, and its W&B run closed: the step, the latest values, the best checkpoint."""
    summary["global_step"] = module.steps_done
    quality, protocol, evaluation_seconds = latest_evaluation(trainer)
    summary["metrics"] = scalar_metrics({**trainer.callback_metrics, **quality})
    if protocol:
        summary["metrics_protocol"] = protocol  # how its sample-quality metrics were computed
        summary["evaluation_s"] = round(evaluation_seconds, 3)  # of wall_time_s: the cost of measuring sample quality
    if config.trainer.on_nan == "skip":
        summary["skipped_updates"] = module.skipped_updates
    summary["wandb_dir"] = finish_wandb(trainer.loggers, protocol)
    summary["machine"] = {**machine(), "processes": trainer.world_size}  # beside wall_time_s: what that time was spent on
    best = checkpoint.best_record()
    if best is not None:
        summary["best"] = best


def previous_metrics(run_dir: Path) -> Dict[str, Any]:
    try:
        return read_summary(run_dir).get("metrics", {})
    except (OSError, ValueError):
        return {}


def run(cfg: DictConfig) -> Optional[float]:
    quiet_dependencies()
    directory = RunDirectory(Path(HydraConfig.get().runtime.output_dir))
    try:
        return run_in(directory, cfg)
    finally:
        directory.release()  # after the last message, so that run.log has it
        if is_parallel(HydraConfig.get()):
            # The worker process waits for its next job: a Ctrl-C then must not end it (the sweep's process
            # marks the sweep as stopping, which the next job checks before it trains).
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_in(directory: RunDirectory, cfg: DictConfig) -> Optional[float]:
    hydra_config = HydraConfig.get()
    context = run_context(cfg)
    multirun = hydra_config.mode == RunMode.MULTIRUN
    parallel = is_parallel(hydra_config)
    rank_zero = process_rank() == 0
    started = time.perf_counter()
    summary = initial_summary(hydra_config.overrides.task)
    resume: Optional[Resume] = None
    exit_code = 0
    try:
        config = to_config(cfg)
        validate(config)  # settings alone, before the directory is looked at
        config.trainer.check_machine()
        if rank_zero:  # the other processes of a data-parallel job work inside rank 0's hold on the directory
            directory.acquire()
        prepared = prepare(config, context)
        resume = prepared.resume
        if sweep_stopping(hydra_config):
            raise SweepStopped()
        directory.claim(cfg, hydra_config, job_log_name(hydra_config), write_config=rank_zero)
        if rank_zero:
            context.run_id = directory.run_id(own_run_id(prepared.resume, context.run_dir))
        context.resume_step = prepared.resume.steps_done if prepared.resume else 0
        train(config, context, prepared, summary)
    except Exception as error:
        exit_code = record_failure(error, summary, context.run_dir, multirun)
    except BaseException as error:
        summary["status"] = "interrupted"
        summary["error"] = f"{type(error).__name__}: {error}"
        if not parallel:  # a parallel job's worker process lives on: the sweep's process reports the stop
            raise
    finally:
        summary.update(wall_times(resume, context.run_dir, time.perf_counter() - started))
        # A refused start or resume leaves the files of a run already in the directory as they were.
        if rank_zero and (directory.claimed or not directory.holds_previous_run):
            save_summary(context.run_dir, summary)
    if not rank_zero:
        # The other processes of a data-parallel job leave the summary, final messages and exit status to rank 0
        # (a failing exit here would make Lightning's launcher kill rank 0 before it reports).
        return None
    report_end(context, summary)
    if (exit_code >= 128 and not parallel) or (exit_code and not multirun):
        # Interruptions stop a basic multirun too: the jobs after this one would be stopped by the same signal.
        sys.exit(exit_code)
    return sweep_value(OmegaConf.select(cfg, "optimized_metric"), summary)


def report_end(context: RunContext, summary: Dict[str, Any]) -> None:
    """Where a completed run's files and W&B run are."""
    if summary["status"] == "completed":
        log.info(f"run directory: {context.run_dir} (samples/, checkpoints/, summary.json" + (", csv/" if (context.run_dir / "csv").exists() else "") + ")")
        if summary.get("wandb_dir"):
            log.info(f"W&B run: {summary['wandb_dir']} (upload every segment with: wandb sync {context.run_dir / 'wandb'}/*run-*-{context.run_id})")


def initial_summary(overrides: Any) -> Dict[str, Any]:
    """A job's summary until it ends: failed at step 0 unless it records otherwise."""
    return {"status": "failed", "global_step": 0, "metrics": {}, "overrides": list(overrides), **slurm_job()}


def continues_own_run(resume: Optional[Resume], run_dir: Path) -> bool:
    """Whether ``resume`` is a checkpoint of this run directory; one of another run (resume=PATH) starts a new run."""
    return resume is not None and Path(resume.path).resolve().parent.parent == Path(run_dir).resolve()


def own_run_id(resume: Optional[Resume], run_dir: Path) -> Optional[str]:
    """The run id a checkpoint of this run directory carries."""
    return stored_run_id(resume.checkpoint) if continues_own_run(resume, run_dir) else None


def wall_times(resume: Optional[Resume], run_dir: Path, seconds: float) -> Dict[str, float]:
    """``wall_time_s``: the run's seconds over all its segments, so a resumed or requeued run adds those its summary
    recorded before; ``segment_wall_time_s``: this process's share, when it continued its own run."""
    if not continues_own_run(resume, run_dir):
        return {"wall_time_s": round(seconds, 3)}
    try:
        earlier = float(read_summary(run_dir).get("wall_time_s", 0.0))
    except (OSError, ValueError, TypeError):  # no readable summary: the earlier segment was killed before writing it
        earlier = 0.0
    return {"wall_time_s": round(earlier + seconds, 3), "segment_wall_time_s": round(seconds, 3)}


def record_failure(error: Exception, summary: Dict[str, Any], run_dir: Path, multirun: bool) -> int:
    """Put ``error`` in the summary and the log; return the exit code it calls for."""
    user_error = error if isinstance(error, UserError) else user_fixable(error, folder=run_dir)
    if user_error is not None:
        summary["error"] = str(user_error)
        log.error(str(user_error))
        return USER_ERROR_EXIT
    if isinstance(error, Diverged):
        summary.update(status="diverged", error=str(error))
        last = run_dir / "checkpoints" / "last.ckpt"
        kept = f"the last good checkpoint is kept: {last}" if last.exists() else "no checkpoint had been written yet"
        log.error(f"{error}; {kept}")
        return DIVERGED_EXIT
    if isinstance(error, (Interrupted, SweepStopped)):
        summary.update(status="interrupted", error=str(error))
        log.warning(str(error))
        return error.exit_code if isinstance(error, Interrupted) else 0
    summary["error"] = f"{type(error).__name__}: {error}"
    if not multirun:
        raise error
    # One broken job must not end a sweep: record it and let the others run.
    log.error(f"job failed:\n{traceback.format_exc()}")
    return 1


def save_summary(run_dir: Path, summary: Dict[str, Any]) -> None:
    try:
        write_summary(run_dir, summary)
    except OSError as error:  # the error that ended the run (a full disk) may forbid this write too
        log.error(str(user_fixable(error, Path(run_dir) / "summary.json") or error))


def sweep_value(metric: Optional[str], summary: Dict[str, Any]) -> Optional[float]:
    """The value a run returns to a sweeper (Optuna) for ``optimized_metric``.

    A diverged run returns the worst value for the study's direction: its hyperparameters made training
    diverge, and the sampler should learn to avoid them. A failed run, or one without the metric, returns
    None: the Optuna sweeper records that trial as failed and samples on without it (a NaN would make the
    sweeper itself fail: optuna 2.10 refuses a NaN value, then a failed state that carries one).
    """
    if not metric:
        return None
    if summary["status"] == "diverged":
        direction = str(OmegaConf.select(HydraConfig.get(), "sweeper.direction", default="minimize"))
        return float("-inf") if "max" in direction.lower() else float("inf")
    value = summary["metrics"].get(metric)
    if value is None and summary["status"] == "completed":
        log.error(f"optimized_metric={metric!r} is not among this run's metrics ({', '.join(sorted(summary['metrics']))}); nothing is returned to the sweeper")
    return None if value is None or math.isnan(float(value)) else float(value)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> Optional[float]:
    return run(cfg)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m gan_lightning.run ARGV``: Hydra's command line, in this process; returns the exit code (a run
    that fails exits through SystemExit with its own code)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    reset_sweep_outcome()
    saved, sys.argv = sys.argv, [sys.argv[0] if sys.argv else "gan_lightning.run", *argv]
    try:
        hydra_main()
    finally:
        sys.argv = saved
    return sweep_exit_code()  # a multirun exits non-zero unless every job completed


if __name__ == "__main__":
    sys.exit(main())

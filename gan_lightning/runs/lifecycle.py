"""A run from its composed config to ``summary.json`` and its exit status, for every kind of job.

The settings are checked first, with nothing but the config schemas imported: a refused setting costs no torch or
Lightning import. Only then are the data, networks and trainer built (``gan_lightning.runs.training``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import time
import traceback
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_lightning.checkpoints.folder import last_checkpoint
from gan_lightning.config import to_config, validate
from gan_lightning.errors import DIVERGED_EXIT, USER_ERROR_EXIT, Diverged, Interrupted, UserError
from gan_lightning.files import cache_build_seconds, user_fixable
from gan_lightning.runs import start_up_signals as signals
from gan_lightning.runs.context import RunContext, run_context
from gan_lightning.runs.directory import RunDirectory, continues_own_run, job_log_name
from gan_lightning.runs.jobs import SweepStopped, is_parallel, sweep_stopping
from gan_lightning.runs.summary import ENDED_WELL, read_summary, slurm_job, write_summary
from gan_lightning.study.settings import is_search
from gan_lightning.training.distributed import process_rank

if TYPE_CHECKING:
    from gan_lightning.checkpoints.resume import Resume

log = logging.getLogger("gan_lightning")


# Loggers of dependencies whose INFO lines say nothing a user acts on: Lightning's device lines (GPU/TPU available) and
# its DDP start-up lines (each process's rank), the SQL migrations and study lines of Optuna, the joblib launcher's
# settings, matplotlib's font cache. ``verbose=true`` keeps them.
CHATTY_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                  "lightning_fabric.utilities.distributed", "lightning.fabric.utilities.distributed", "alembic",
                  "matplotlib", "hydra_plugins.hydra_joblib_launcher", "optuna")  # fmt: skip


def quiet_dependencies(verbose: bool = False) -> None:
    """Drop messages from dependencies that say nothing about this run (advertising, internal deprecations, device
    and plugin lines; W&B's banner and run summary): a run prints its own progress and where its results went.
    ``verbose``: keep what dependencies print, but for deprecations that concern them alone."""
    if not verbose:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        os.environ.setdefault("WANDB_SILENT", "true")  # read by W&B when a run starts
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # The EMA copy of G is always in eval mode, on purpose.
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    # Epochs never end a run here (steps do), and logging counts steps across epochs.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # Jobs reach SLURM through hydra/launcher=slurm (submitit), which starts them inside the allocation.
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system but is not used.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡")
    )


@contextlib.contextmanager
def running_job(cfg: DictConfig) -> Iterator[signals.StartUpSignals]:
    """What every job does around its run, a single run's or a vectorized group's alike: stop signals held from the
    first moment (a signal during start-up ends the job as ``interrupted``), dependencies quieted; at its end the
    handlers from before put back, and in a parallel launcher's worker stop signals ignored until its next job (the
    sweep's process marks the sweep as stopping, which the next job checks before it trains)."""
    start_up = signals.hold()  # before the seconds of start-up (a signal since the command began is kept)
    quiet_dependencies(bool(OmegaConf.select(cfg, "verbose", default=False)))
    try:
        yield start_up
    finally:
        signals.release()
        if is_parallel(HydraConfig.get()):
            signals.ignore(signal.SIGINT, signal.SIGTERM)


def run(cfg: DictConfig) -> Optional[float]:
    with running_job(cfg) as start_up:
        directory = RunDirectory(Path(HydraConfig.get().runtime.output_dir))
        try:
            return run_in(directory, cfg, start_up)
        finally:
            directory.release()  # after the last message, so that run.log has it


def run_in(directory: RunDirectory, cfg: DictConfig, start_up: signals.StartUpSignals) -> Optional[float]:
    hydra_config = HydraConfig.get()
    context = run_context(cfg)
    multirun = hydra_config.mode == RunMode.MULTIRUN
    parallel = is_parallel(hydra_config)
    # Until the settings pass, every process of a job refuses them alike, and reports so.
    rank_zero = True
    started, built_before = time.perf_counter(), cache_build_seconds()
    summary = initial_summary(hydra_config.overrides.task, context.config.get("choices"))
    resume: Optional[Resume] = None
    exit_code = 0
    try:
        if is_search(hydra_config):  # a trial of a search: told how the job ends, a refused one too
            from gan_lightning.study.trial import TrialLink

            context.trial = TrialLink.of_job(hydra_config, lead=process_rank() == 0)
        config = to_config(cfg)
        validate(config)  # settings alone, before the directory is looked at
        config.trainer.check_machine()
        from gan_lightning.runs.training import (  # what training needs, once the settings pass
            own_run_id,
            prepare,
            train,
        )

        rank_zero = process_rank() == 0
        if rank_zero:  # the other processes of a data-parallel job work inside rank 0's hold on the directory
            directory.acquire()
        if context.trial is not None:
            summary["trial"] = context.trial.begin(directory.path)
        prepared = prepare(config, context)
        resume = prepared.resume
        if sweep_stopping(hydra_config):
            raise SweepStopped()
        start_up.check(prepared.resume.steps_done if prepared.resume else 0)
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
        if rank_zero:
            built = cache_build_seconds() - built_before  # set-up shared by every later run: not this run's time
            if built > 0:
                summary["cache_build_s"] = round(built, 3)
            end_summary(directory, summary, resume, time.perf_counter() - started - built, refusal_too=multirun)
    if not rank_zero:
        # The other processes of a data-parallel job leave the summary, final messages and exit status to rank 0
        # (a failing exit here would make Lightning's launcher kill rank 0 before it reports).
        return None
    value = sweep_value(OmegaConf.select(cfg, "optimized_metric"), summary)
    if context.trial is not None:
        context.trial.finish(summary, value)
    report_end(context, summary)
    if (exit_code >= 128 and not parallel) or (exit_code and not multirun):
        # Interruptions stop a basic multirun too: the jobs after this one would be stopped by the same signal.
        sys.exit(exit_code)
    return value


def report_end(context: RunContext, summary: Dict[str, Any]) -> None:
    """Where a completed (or pruned) run's files and W&B run are."""
    if summary["status"] in ENDED_WELL:
        log.info(
            f"run directory: {context.run_dir} (samples/, checkpoints/, summary.json"
            + (", csv/" if (context.run_dir / "csv").exists() else "")
            + ")"
        )
        if summary.get("wandb_dir"):
            log.info(
                f"W&B run: {summary['wandb_dir']} (upload every segment with: wandb sync {context.run_dir / 'wandb'}/*run-*-{context.run_id})"
            )


# The config groups whose options say what a run is, in summary.json's ``choices``.
CHOSEN_GROUPS = ("objective", "model", "data", "optimizer", "augment", "metrics", "trainer", "experiment")


def initial_summary(overrides: Any, choices: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A job's summary until it ends: failed at step 0 unless it records otherwise."""
    chosen = {group: (choices or {})[group] for group in CHOSEN_GROUPS if (choices or {}).get(group)}
    return {"status": "failed", "global_step": 0, "metrics": {}, "choices": chosen, "overrides": list(overrides),
            "started_at": now(), **slurm_job()}  # fmt: skip


def now() -> str:
    """The time of day with its UTC offset, to the millisecond (ISO 8601)."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def earlier_segments(resume: Optional[Resume], run_dir: Path, seconds: float) -> Dict[str, Any]:
    """``wall_time_s``: the run's seconds over all its segments, so a resumed or requeued run adds those its summary
    recorded before; ``segment_wall_time_s``: this process's share, when it continued its own run; ``started_at``:
    when its first segment started."""
    if resume is None or not continues_own_run(resume.path, run_dir):
        return {"wall_time_s": round(seconds, 3)}
    try:
        earlier = read_summary(run_dir)
        earlier_seconds = float(earlier.get("wall_time_s", 0.0))
    except (OSError, ValueError, TypeError):  # no readable summary: the earlier segment was killed before writing it
        earlier, earlier_seconds = {}, 0.0
    first_start = {"started_at": earlier["started_at"]} if isinstance(earlier.get("started_at"), str) else {}
    return {"wall_time_s": round(earlier_seconds + seconds, 3), "segment_wall_time_s": round(seconds, 3), **first_start}


def run_files(run_dir: Path) -> Dict[str, str]:
    """The run's latest checkpoint and sample grid, as paths inside its directory, where they exist."""
    files = {"checkpoint": last_checkpoint(run_dir), "samples": run_dir / "samples" / "last.png"}
    return {key: str(path.relative_to(run_dir)) for key, path in files.items() if path.is_file()}


def record_failure(error: Exception, summary: Dict[str, Any], run_dir: Path, multirun: bool) -> int:
    """Put ``error`` in the summary and the log; return the exit code it calls for."""
    user_error = error if isinstance(error, UserError) else user_fixable(error, folder=run_dir)
    if user_error is not None:
        summary["error"] = str(user_error)
        log.error(str(user_error))
        return USER_ERROR_EXIT
    if isinstance(error, Diverged):
        summary.update(status="diverged", error=str(error))
        last = last_checkpoint(run_dir)
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


def end_summary(
    directory: RunDirectory,
    summary: Dict[str, Any],
    resume: Optional[Resume],
    seconds: float,
    refusal_too: bool = False,
) -> None:
    """A run's summary.json at its end, with its wall times: every run of a job, a vectorized group's members too. A
    refused start or resume leaves the files of a run already in the directory as they were; settings refused before
    the run took its directory leave no directory at all, unless ``refusal_too`` (a job of a basic or parallel
    multirun, which the sweep's tally counts by its summary)."""
    summary.update(earlier_segments(resume, directory.path, seconds), ended_at=now(), **run_files(directory.path))
    if directory.claimed or (not directory.holds_previous_run and (directory.acquired or refusal_too)):
        save_summary(directory.path, summary)


def save_summary(run_dir: Path, summary: Dict[str, Any]) -> None:
    try:
        write_summary(run_dir, summary)
    except OSError as error:  # the error that ended the run (a full disk) may forbid this write too
        log.error(str(user_fixable(error, Path(run_dir) / "summary.json") or error))


def sweep_value(metric: Any, summary: Dict[str, Any]) -> Any:
    """The value a run returns to a sweeper for ``optimized_metric`` (a list of values for a list of metrics): each a
    key of summary.json's metrics, or of the summary itself (``wall_time_s``).

    A diverged run returns the worst value for the study's direction: its hyperparameters made training
    diverge, and the sampler should learn to avoid them. A failed run, or one without the metric, returns
    None: the trial is recorded as failed and the study samples on without it.
    """
    names = [metric] if isinstance(metric, str) else list(metric or [])
    if not names:
        return None
    if summary["status"] == "diverged":
        direction = OmegaConf.select(HydraConfig.get(), "sweeper.direction", default="minimize")
        directions = [direction] * len(names) if isinstance(direction, str) else list(direction)
        worst = [float("-inf") if "max" in str(d).lower() else float("inf") for d in directions]
        return worst[0] if isinstance(metric, str) else worst
    values = [number(summary["metrics"].get(name, summary.get(name))) for name in names]
    missing = [name for name, value in zip(names, values) if value is None]
    if missing and summary["status"] == "completed":
        log.error(
            f"optimized_metric={metric!r}: {', '.join(missing)} not among this run's metrics ({', '.join(sorted(summary['metrics']))}); nothing is returned to the sweeper"
        )
    if missing or any(math.isnan(v) for v in values):
        return None
    return values[0] if isinstance(metric, str) else values


def number(value: Any) -> Optional[float]:
    """A summary's value as a float: summary.json holds infinite values as strings ("inf")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None

"""The runs of a vectorized group: S jobs of a sweep that differ only in their seed, trained as one computation
(gan_lightning.sweeps.vectorized) in one process, each still a run of its own.

Each member has the run directory its job would have had, and leaves in it what a separate run leaves: the
lock and ``.hydra/``, ``run.log``, its W&B run and CSV log, sample grids, metrics, ``checkpoints/last.ckpt`` (the
checkpoint its separate run would have written, split from the group's) and ``summary.json``. The member's
own callbacks and loggers are those a separate run builds; they see the member through ``MemberTrainer`` and a
GAN module whose networks share storage with the member's slice of the stacked weights.

A rerun resumes the group from its members' checkpoints, stacked; members whose checkpoints stand at
different steps are refused, as is every setting the group cannot reproduce, before any directory is touched.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from gan_lightning.adapter.access import attach, checkpoint_now, place_like
from gan_lightning.adapter.checkpoint_layout import callback_states, set_callback_states
from gan_lightning.callbacks.progress import ProgressLog
from gan_lightning.checkpoints.resume import AtomicCheckpointIO, Resume, check_compatible, select_resume
from gan_lightning.checkpoints.saving import PeriodicCheckpoint
from gan_lightning.config import Config, to_config, validate
from gan_lightning.errors import UserError
from gan_lightning.metrics.evaluation import latest_evaluation, latest_evaluation_step
from gan_lightning.runs.build import build_callbacks, build_trainer, module_settings
from gan_lightning.runs.context import RunContext, run_context
from gan_lightning.runs.directory import RunDirectory, job_log_name
from gan_lightning.runs.interrupt import StopOnSignal
from gan_lightning.runs.jobs import SweepStopped, is_parallel, job_threads, sweep_stopping
from gan_lightning.runs.lifecycle import (
    end_summary,
    initial_summary,
    record_failure,
    running_job,
    sweep_value,
)
from gan_lightning.runs.summary import ENDED_WELL
from gan_lightning.runs.training import own_run_id, previous_metrics, record_outcome
from gan_lightning.sweeps.vectorized.checkpoints import group_checkpoint, member_checkpoint
from gan_lightning.sweeps.vectorized.launcher import MemberJob
from gan_lightning.sweeps.vectorized.module import Group, VectorizedGAN, build_group, check_vectorizable
from gan_lightning.tracking.credentials import where_wandb_logs
from gan_lightning.tracking.loggers import build_loggers
from gan_lightning.training.module import GAN
from gan_lightning.training.periodic import Periodic

log = logging.getLogger("gan_lightning")


class OneProcess:
    """The collective calls of a member's callbacks, in the one process that trains the group."""

    def barrier(self, *args: Any, **kwargs: Any) -> None:
        pass

    def broadcast(self, value: Any, src: int = 0) -> Any:
        return value

    def reduce(self, value: Any, *args: Any, **kwargs: Any) -> Any:
        return value

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return decision


@dataclass
class MemberTrainer:
    """What a member's callbacks and GAN module see as their trainer: the member's own loggers, callbacks, data and
    checkpoint files, one process, and the group trainer's step and epoch. It lists everything a run's callbacks
    and module read of a trainer; a callback that reads more of one is refused when it fails here, by name."""

    group_trainer: Optional[pl.Trainer]
    loggers: List[Any]
    callbacks: List[pl.Callback]
    datamodule: Any = None
    save: Optional[Callable[[Path], None]] = None  # writes the member's checkpoint at the current step
    callback_metrics: Dict[str, torch.Tensor] = field(default_factory=dict)

    is_global_zero: ClassVar[bool] = True
    global_rank: ClassVar[int] = 0
    world_size: ClassVar[int] = 1
    strategy: ClassVar[OneProcess] = OneProcess()

    @property
    def logger(self) -> Any:
        return self.loggers[0] if self.loggers else None

    @property
    def current_epoch(self) -> int:
        return self.group_trainer.current_epoch

    @property
    def global_step(self) -> int:
        return self.group_trainer.global_step

    @property
    def max_steps(self) -> int:
        return self.group_trainer.max_steps

    @property
    def log_every_n_steps(self) -> int:
        return self.group_trainer.log_every_n_steps

    def save_checkpoint(self, path: Any, weights_only: bool = False) -> None:
        self.save(Path(path))


def member_module(group: VectorizedGAN, index: int, config: Config) -> GAN:
    """Member ``index`` as a GAN module of a separate run, its networks sharing storage with its slice of the group's."""
    module = GAN(group.generator.network(index), group.discriminator.network(index), **module_settings(config))
    if group.generator_ema is not None:
        module.generator_ema.network = group.generator_ema.network.network(index)
    place_like(module, group)
    module.steps_done = group.steps_done
    return module


@dataclass
class Member:
    """A member's run: its settings, directory, names for trackers, checkpoint to resume from and summary."""

    job: MemberJob
    config: Config
    cfg: DictConfig
    context: RunContext
    directory: RunDirectory
    summary: Dict[str, Any]
    resume: Optional[Resume] = None
    trainer: Optional[MemberTrainer] = None
    module: Optional[GAN] = None
    callbacks: List[pl.Callback] = field(default_factory=list)

    @property
    def checkpoint(self) -> PeriodicCheckpoint:
        return next(c for c in self.callbacks if isinstance(c, PeriodicCheckpoint))


class MemberRuns(pl.Callback):
    """Feeds each member's loggers and callbacks from the group's steps, and writes the members' checkpoints."""

    def __init__(self, members: List[Member]):
        self.members = members
        self.dumped: Optional[tuple] = None  # (step, the group's checkpoint at that step)

    def group_checkpoint_now(self, trainer: pl.Trainer, pl_module: VectorizedGAN) -> Dict[str, Any]:
        if self.dumped is None or self.dumped[0] != pl_module.steps_done:
            self.dumped = (pl_module.steps_done, checkpoint_now(trainer))
        return self.dumped[1]

    def saver(self, trainer: pl.Trainer, pl_module: VectorizedGAN, index: int):
        member = self.members[index]

        def save(path: Path) -> None:
            checkpoint = member_checkpoint(self.group_checkpoint_now(trainer, pl_module), index)
            set_callback_states(checkpoint, {c.state_key: c.state_dict() for c in member.callbacks if c.state_dict()})
            for callback in member.callbacks:
                callback.on_save_checkpoint(member.trainer, member.module, checkpoint)
            AtomicCheckpointIO().save_checkpoint(checkpoint, path)

        return save

    def on_train_start(self, trainer: pl.Trainer, pl_module: VectorizedGAN) -> None:
        for index, member in enumerate(self.members):  # the networks' views are taken where the group now lives
            member.module = member_module(pl_module, index, member.config)
            attach(member.module, member.trainer)  # what the module's own logging and step checks read
            member.trainer.group_trainer, member.trainer.save = trainer, self.saver(trainer, pl_module, index)
            member.trainer.datamodule = trainer.datamodule.datamodules[index]
            if member.resume is not None:
                states = callback_states(member.resume.checkpoint)
                for callback in member.callbacks:
                    if callback.state_key in states:
                        callback.load_state_dict(states[callback.state_key])
            for callback in member.callbacks:
                callback.on_train_start(member.trainer, member.module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: VectorizedGAN, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        steps_done = pl_module.steps_done
        for member in self.members:
            member.module.steps_done = steps_done  # logged_step, and when periodic callbacks fire, follow from it
        if pl_module.logging_now:
            self.log_values(trainer, pl_module)
        if any(
            isinstance(callback, Periodic) and callback.fires_after_step(pl_module)
            for callback in self.members[0].callbacks
        ):
            pl_module.check_losses()  # nothing is saved, drawn or evaluated from weights a non-finite loss spoilt
        for member in self.members:
            for callback in member.callbacks:
                callback.on_train_batch_end(member.trainer, member.module, outputs, batch, batch_idx)

    def log_values(self, trainer: pl.Trainer, pl_module: VectorizedGAN) -> None:
        """Each member's values to its loggers; their means over the members to the group's progress line."""
        rows = pl_module.latest_member_values
        for member, values in zip(self.members, rows):
            member.module.log_values(values, member.module.logged_step)
        pl_module.log_values(
            {name: sum(row[name] for row in rows) / len(rows) for name in rows[0]}, pl_module.logged_step
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: VectorizedGAN) -> None:
        for member in self.members:
            member.module.steps_done = pl_module.steps_done
            for callback in member.callbacks:
                callback.on_train_end(member.trainer, member.module)


class MembersCheckpoint:
    """What StopOnSignal saves when a stop signal arrives: every member's checkpoint at the current step."""

    def __init__(self, members: List[Member]):
        self.members = members

    def save_now(self, trainer: pl.Trainer, pl_module: VectorizedGAN) -> None:
        for member in self.members:
            member.checkpoint.save_now(member.trainer, member.module)


def member_config(cfg: DictConfig, seed: int) -> DictConfig:
    member = copy.deepcopy(cfg)
    member.seed = seed
    return member


def new_members(cfg: DictConfig, jobs: Sequence[MemberJob], context_of) -> List[Member]:
    members = []
    for job in jobs:
        member_cfg = member_config(cfg, job.seed)
        context = context_of(member_cfg, Path(job.run_dir), job.overrides)
        members.append(
            Member(
                job,
                to_config(member_cfg),
                member_cfg,
                context,
                RunDirectory(context.run_dir),
                initial_summary(job.overrides, context.config.get("choices")),
            )
        )
    return members


def prepare_members(members: List[Member]) -> None:
    """Check the settings, take every member's directory and choose what each resumes from, or refuse the group."""
    first = members[0].config
    validate(first)
    first.trainer.check_machine()
    check_vectorizable(first)
    for member in members:
        member.directory.acquire()
    first.data.prepare()
    first.metrics.prepare(first.data)
    for member in members:
        member.resume = select_resume(member.config.resume, member.context.run_dir)
    resumed = [m for m in members if m.resume is not None]
    if resumed and (len(resumed) != len(members) or len({m.resume.steps_done for m in resumed}) > 1):
        where = ", ".join(f"{m.context.run_dir}: step {m.resume.steps_done if m.resume else 0}" for m in members)
        raise UserError(
            f"the members of this vectorized group stand at different steps ({where}), so they cannot continue as one "
            "computation: rerun this sweep with hydra/launcher=basic (or parallel), which continues each run on its own."
        )


def train_group(members: List[Member], log_name: str) -> None:
    """Build the group, claim the members' directories and train; every member's summary records the outcome."""
    first, hydra_config = members[0].config, HydraConfig.get()
    threads = job_threads(hydra_config, first.trainer.num_threads)
    if threads is not None:
        torch.set_num_threads(threads)
    group = build_group(first, [m.job.seed for m in members])
    for index, member in enumerate(members):
        if member.resume is not None:
            check_compatible(
                member.resume,
                member_module(group.module, index, member.config),
                member.context.config,
            )
    for member in members:
        member.directory.claim(member.cfg, member_hydra_config(hydra_config, member), log_name)
        member.context.run_id = member.directory.run_id(own_run_id(member.resume, member.context.run_dir))
        member.context.resume_step = member.resume.steps_done if member.resume else 0
    steps_done = members[0].context.resume_step
    if steps_done >= first.trainer.max_steps:
        log.info(
            f"the members' checkpoints are at step {steps_done}, trainer.max_steps={first.trainer.max_steps}: nothing left to train"
        )
        for member in members:
            member.summary.update(
                status="completed", global_step=steps_done, metrics=previous_metrics(member.context.run_dir)
            )
        return
    if steps_done:
        log.info(f"resuming {len(members)} members from their checkpoints at step {steps_done}")
    fit_group(group, members)
    for member in members:
        member.summary["status"] = "completed"


def member_hydra_config(hydra_config: Any, member: Member) -> Any:
    """The group job's Hydra config as the member's job would have had it: its overrides and directory."""
    own = copy.deepcopy(hydra_config)
    with read_write(own), open_dict(own):
        own.overrides.task = list(member.job.overrides)
        own.runtime.output_dir = str(member.context.run_dir)
    return own


def fit_group(group: Group, members: List[Member]) -> None:
    first = members[0].config
    if first.logger.wandb and first.logger.mode != "disabled":
        log.info(f"{where_wandb_logs(first.logger.mode)} (each seed's run in its own directory)")
    for member in members:
        member.callbacks = [
            c for c in build_callbacks(member.config, member.context) if not isinstance(c, (ProgressLog, StopOnSignal))
        ]
        loggers = build_loggers(
            member.config.logger, member.context.run_dir, member.context.run_id, member.context.resume_step, member.context.name,
            member.context.group, member.context.tags, hparams=member.context.config, alongside=True,
        )  # fmt: skip
        member.trainer = MemberTrainer(None, loggers, member.callbacks, None, None)
    group_context = RunContext(members[0].context.run_dir, name="group")
    trainer = build_trainer(first, group_context, logger=False, callbacks=group_callbacks(first, members))
    stop = next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))
    staging = Path(tempfile.mkdtemp(prefix="gan_lightning_group_"))
    resume_path = None
    try:
        if members[0].resume is not None:
            checkpoint = group_checkpoint([m.resume.checkpoint for m in members])
            set_callback_states(
                checkpoint, {}
            )  # each member's callbacks take their own states (MemberRuns.on_train_start)
            resume_path = staging / "group.ckpt"
            AtomicCheckpointIO().save_checkpoint(checkpoint, resume_path)
        with stop.installed(group.module):
            trainer.fit(group.module, datamodule=group.datamodule, ckpt_path=resume_path, weights_only=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for index, member in enumerate(members):
            if member.module is None:  # stopped before training began
                member.module = member_module(group.module, index, member.config)
            record_outcome(member.summary, member.config, member.trainer, member.module, member.checkpoint)


def group_callbacks(config: Config, members: List[Member]) -> List[pl.Callback]:
    callbacks: List[pl.Callback] = [MemberRuns(members)]
    if config.callbacks.progress_every_n_steps > 0:
        callbacks.append(ProgressLog(config.callbacks.progress_every_n_steps, config.trainer.max_steps,
                                     members=lambda group: members_progress(group, members)))  # fmt: skip
    callbacks.append(StopOnSignal(MembersCheckpoint(members)))
    return callbacks


def members_progress(group: VectorizedGAN, members: List[Member]) -> List[tuple]:
    """What the group's progress line shows of each member: its latest values, latest evaluation and that step."""
    rows = getattr(group, "latest_member_values", None) or [{} for _ in members]
    return [(row, latest_evaluation(member.trainer)[0], latest_evaluation_step(member.callbacks))
            for row, member in zip(rows, members)]  # fmt: skip


def report_group_end(members: List[Member]) -> None:
    """Where the completed members' files and W&B runs are: one line for the group, not lines per member."""
    done = [m for m in members if m.summary["status"] in ENDED_WELL]
    if not done:
        return
    parent = done[0].context.run_dir.parent
    if all(m.context.run_dir.parent == parent for m in done):
        where = f"{parent}/{{{','.join(m.context.run_dir.name for m in done)}}}"
    else:
        where = ", ".join(str(m.context.run_dir) for m in done)
    log.info(f"run directories of {len(done)} seeds: {where} (samples/, checkpoints/, summary.json)")
    if any(m.summary.get("wandb_dir") for m in done):
        log.info(f"W&B runs: each in its run directory's wandb/ (upload with: wandb sync {parent}/*/wandb/*run-*)")


def run_group(cfg: DictConfig, jobs: Sequence[MemberJob]) -> GroupResult:
    """Train ``jobs`` as one vectorized group; each member's directory ends with its summary. The group is a job as a
    single run is (gan_lightning.runs.lifecycle.running_job): the same signals from its first moment, the same end."""
    with running_job(cfg) as start_up:
        return run_group_in(cfg, jobs, start_up)


def run_group_in(cfg: DictConfig, jobs: Sequence[MemberJob], start_up: Any) -> GroupResult:
    hydra_config = HydraConfig.get()
    started = time.perf_counter()
    members: List[Member] = []
    failure: Dict[str, Any] = {}
    exit_code = 0
    try:
        members = new_members(cfg, jobs, run_context)
        prepare_members(members)
        if sweep_stopping(hydra_config):
            raise SweepStopped()
        start_up.check(members[0].resume.steps_done if members[0].resume else 0)
        train_group(members, job_log_name(hydra_config))
    except Exception as error:
        exit_code = record_failure(error, failure, Path(jobs[0].run_dir), multirun=True)
    except BaseException as error:
        failure = {"status": "interrupted", "error": f"{type(error).__name__}: {error}"}
        if not is_parallel(hydra_config):
            raise
    finally:
        wall = time.perf_counter() - started
        for member in members or new_summaries(jobs):
            member.summary.update({key: failure[key] for key in ("status", "error") if key in failure})
            member.summary["group_size"] = len(jobs)  # the runs that shared wall_time_s
            end_summary(member.directory, member.summary, member.resume, wall)
            member.directory.release()
    report_group_end(members)
    if exit_code >= 128 and not is_parallel(hydra_config):
        raise SystemExit(exit_code)  # a stop signal stops the jobs after this group too
    values = [sweep_value(OmegaConf.select(cfg, "optimized_metric"), m.summary) for m in members] or [None] * len(jobs)
    return GroupResult(values, exit_code)


@dataclass
class GroupResult:
    """What a group's job returns to the launcher: each member's value for a sweeper, and the group's exit code."""

    values: List[Optional[float]]
    exit_code: int


@dataclass
class RefusedJob:
    """A job of a group refused before its members' runs could be set up (a setting its config cannot hold)."""

    directory: RunDirectory
    summary: Dict[str, Any]
    resume: Optional[Resume] = None  # a refused job continued nothing


def new_summaries(jobs: Sequence[MemberJob]) -> List[RefusedJob]:
    return [RefusedJob(RunDirectory(Path(job.run_dir)), initial_summary(job.overrides)) for job in jobs]

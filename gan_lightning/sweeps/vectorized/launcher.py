"""``hydra/launcher=vectorized``: the jobs of a multirun that differ only in ``seed`` train as one group each.

The launcher forms the groups from the sweep (``plan``), gives each member the run directory the basic launcher
would give its job, and hands one job per group (and each job that cannot be grouped, unchanged) to the launcher
``hydra.launcher.groups`` names: ``basic`` (one after another in this process), ``parallel`` (``n_jobs`` at a
time, hydra-joblib-launcher) or ``slurm`` (one array task per group, hydra-submitit-launcher). A group's job
trains its members with gan_lightning.sweeps.vectorized.members; the multirun's results come back one per member.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf, open_dict

from gan_lightning.errors import UserError
from gan_lightning.sweeps import report

log = logging.getLogger("gan_lightning")

GROUPS_LAUNCHERS = ("basic", "parallel", "slurm")
Job = Tuple[int, List[str]]  # a job's number in the sweep and its overrides


@dataclass
class MemberJob:
    """One job of the sweep that trains as a member of a group: its seed, overrides and run directory."""

    seed: int
    overrides: List[str]
    run_dir: str


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def seed_of(overrides: Sequence[str]) -> Optional[int]:
    """The job's seed when an override sets it to an integer (seed=3), else None: such a job is not grouped."""
    values = [o.split("=", 1)[1] for o in overrides if override_key(o) == "seed" and "=" in o]
    try:
        return int(values[0]) if len(values) == 1 else None
    except ValueError:
        return None


def plan(jobs: Sequence[Job], max_members: Optional[int] = None) -> List[List[Job]]:
    """Jobs grouped by their overrides other than the seed, in sweep order; groups of at most ``max_members``."""
    groups: Dict[Any, List[Job]] = {}
    for number, overrides in jobs:
        key = (
            tuple(o for o in overrides if override_key(o) != "seed")
            if seed_of(overrides) is not None
            else ("job", number)
        )
        groups.setdefault(key, []).append((number, list(overrides)))
    size = max_members or max(len(group) for group in groups.values())
    return [group[start : start + size] for group in groups.values() for start in range(0, len(group), size)]


def quoted(value: str) -> str:
    """``value`` as a quoted string of Hydra's override grammar."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def task_key(overrides: Sequence[str]) -> Tuple[str, ...]:
    """A job's overrides as its Hydra config lists them (``hydra.overrides.task``: without Hydra's own)."""
    return tuple(o for o in overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/")))


class GroupTask:
    """The task the groups' launcher runs: a group's job trains its members (``run_group``); any other job runs as
    usual."""

    def __init__(self, task_function: Any, groups: Dict[Tuple[str, ...], List[MemberJob]], run_group: Any):
        self.task_function, self.groups, self.run_group = task_function, groups, run_group

    def __call__(self, cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig

        jobs = self.groups.get(task_key(HydraConfig.get().overrides.task))
        return self.task_function(cfg) if jobs is None else self.run_group(cfg, jobs)


def inner_launcher(launcher: Any) -> Any:
    if launcher.groups not in GROUPS_LAUNCHERS:
        raise UserError(
            f"hydra.launcher.groups={launcher.groups!r} is not a launcher for the groups; allowed: {', '.join(GROUPS_LAUNCHERS)}"
        )
    if launcher.groups == "basic":
        from hydra._internal.core_plugins.basic_launcher import BasicLauncher

        return BasicLauncher()
    from hydra.utils import instantiate

    return instantiate(launcher.config.hydra.launcher[launcher.groups])


def subdir_of(launcher: Any, number: int, overrides: Sequence[str]) -> str:
    """The folder of the sweep directory that the basic launcher would give job ``number``."""
    if OmegaConf.to_container(launcher.config.hydra.sweep, resolve=False)["subdir"] == "${hydra.job.num}":
        return str(number)  # the default: composing the job's config (0.4 s a job) would say the same
    config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(config):
        config.hydra.job.id = config.hydra.job.num = number
    return str(config.hydra.sweep.subdir)


def launch_groups(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, run_group: Any
) -> List[JobReturn]:
    """The sweep's jobs grouped by seed and launched; ``run_group(cfg, members)`` trains a group's members."""
    planned = plan(list(enumerate(job_overrides, start=initial_job_idx)), launcher.max_members)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    inner_jobs: List[List[str]] = []
    groups: Dict[Tuple[str, ...], List[MemberJob]] = {}
    for jobs in planned:
        subdirs = [subdir_of(launcher, number, overrides) for number, overrides in jobs]
        overrides = [*jobs[0][1], f"hydra.sweep.subdir={quoted(subdirs[0])}"]  # the first member's directory
        inner_jobs.append(overrides)
        if len(jobs) > 1:
            members = [
                MemberJob(seed_of(o), o, os.path.abspath(sweep_dir / subdir)) for (_, o), subdir in zip(jobs, subdirs)
            ]
            groups[task_key(overrides)] = members
            log.info(
                f"vectorized group of {len(jobs)} seeds ({', '.join(str(m.seed) for m in members)}): {' '.join(filter_overrides(inner_jobs[-1][:-1]))}"
            )
    inner = inner_launcher(launcher)
    inner.setup(
        hydra_context=launcher.hydra_context,
        task_function=GroupTask(launcher.task_function, groups, run_group),
        config=launcher.config,
    )
    returns = inner.launch(inner_jobs, initial_job_idx)
    for jobs, returned in zip(planned, returns):
        if len(jobs) > 1 and returned.status == JobStatus.COMPLETED:
            report.refused_exit_code = max(report.refused_exit_code, returned.return_value.exit_code)
    return [member for jobs, returned in zip(planned, returns) for member in per_member(jobs, returned)]


def per_member(jobs: List[Job], returned: JobReturn) -> List[JobReturn]:
    """One result per job of the sweep: a group's job returns its members' values together."""
    if len(jobs) == 1:
        return [returned]
    members = [
        dataclasses.replace(returned, overrides=overrides) for _, overrides in jobs
    ]  # a failed job's error, for each
    if returned.status == JobStatus.COMPLETED:
        for member, value in zip(members, returned.return_value.values):
            member.return_value = value
    return members

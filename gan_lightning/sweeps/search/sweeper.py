"""``hydra/sweeper=search``: an Optuna study run as a Hydra sweep, its trials launched one by one as workers free.

Each trial is one job of the launcher the sweep names (basic: one at a time in this process; parallel: the
launcher's ``n_jobs`` side by side; SLURM: ``hydra.sweeper.n_jobs`` jobs in the queue at once); the next trial is
asked for as soon as any job returns, so a slow trial holds up nobody and a pruned one frees its worker at once.
The study lives in its storage (gan_lightning.study.storage): running the same command again continues it,
and two sweeps on one storage share it.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lightning.adapter.hydra_cli import first_line
from gan_lightning.errors import USER_ERROR_EXIT, UserError
from gan_lightning.runs.jobs import available_cores, joblib_settings, slurm_settings, stopping_file
from gan_lightning.study import records
from gan_lightning.study.records import StoredStudy
from gan_lightning.study.settings import SearchSettings
from gan_lightning.study.space import SearchSpace
from gan_lightning.study.storage import dashboard_command, open_storage, storage_url
from gan_lightning.sweeps import report

log = logging.getLogger("gan_lightning")

RESULTS_FILE = "optimization_results.yaml"


def launcher_workers(hydra_config: Any, n_jobs: Optional[int]) -> int:
    """Trials at a time: the parallel launcher's processes, SLURM's jobs in flight, one for the basic launcher (it
    runs its job in this process); ``hydra.sweeper.n_jobs`` caps them."""
    parallel, slurm = joblib_settings(hydra_config), slurm_settings(hydra_config)
    if parallel is not None:
        jobs = int(parallel.n_jobs)
        capacity = jobs if jobs > 0 else max(1, available_cores() + 1 + jobs)  # joblib's -1: every core
    elif slurm is not None:
        capacity = n_jobs or int(slurm.get("array_parallelism") or 1)
    else:
        capacity = 1
    return max(1, min(capacity, n_jobs or capacity))


@dataclass
class Launch:
    """A trial handed to the launcher, and what came back."""

    number: int
    overrides: List[str]
    started: float
    error: Optional[BaseException] = None


class Search:
    """The sweep's loop; ``hydra_plugins.gan_lightning_search.SearchSweeper`` is its face to Hydra."""

    def __init__(self, config: DictConfig, launcher: Any):
        self.config, self.launcher = config, launcher
        self.settings = SearchSettings.of(config.hydra.sweeper)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.in_flight: Dict[int, Launch] = {}
        self.returned: queue.Queue[Launch] = queue.Queue()
        self.done = threading.Event()

    def sweep(self, arguments: List[str]) -> Any:
        try:
            space = check_search(self.config, arguments)
            if (
                self.sweep_dir.is_dir()
                and not (self.sweep_dir / "multirun.yaml").is_file()
                and any(self.sweep_dir.iterdir())
            ):
                raise UserError(
                    f"hydra.sweep.dir={self.sweep_dir} holds files of something other than a sweep: choose another folder."
                )
            stored = self.open_study(space)
            self.check_directories(stored)
        except UserError as error:  # one message and exit code 2, the sweep directory as it was
            log.error(str(error))
            report.search_exit_code = USER_ERROR_EXIT
            return []
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        return self.run_study(stored, space)

    def run_study(self, stored: StoredStudy, space: SearchSpace) -> Any:
        settings, study = self.settings, stored.study
        stored.fail_lost(settings.stale_after_s, settings.retries)
        workers = launcher_workers(self.config.hydra, settings.n_jobs)
        log.info(
            f"study {settings.study_name} ({storage_url(settings.storage, self.sweep_dir)}): {settings.n_trials} trials, "
            f"{workers} at a time, sampler {type(study.sampler).__name__}, pruner {type(study.pruner).__name__}"
        )
        beating = threading.Thread(target=self.keep_beating, args=(stored,), name="search heartbeat", daemon=True)
        beating.start()
        try:
            self.run_trials(stored, space, workers)
        finally:
            self.done.set()
        from gan_lightning.sweeps.search.report import write_study_report

        report.search_exit_code = study_exit_code(stored, settings)
        write_results(study, self.sweep_dir / RESULTS_FILE)
        metric = OmegaConf.select(self.config, "optimized_metric")
        write_study_report(
            study, self.sweep_dir, settings, metric, wandb=bool(OmegaConf.select(self.config, "logger.wandb"))
        )
        log.info(f"open the study in optuna-dashboard: {dashboard_command(settings.storage, self.sweep_dir)}")
        return []

    def open_study(self, space: SearchSpace) -> StoredStudy:
        import optuna

        settings = self.settings
        storage = open_storage(settings.storage, self.sweep_dir)
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
        before = existing.get(settings.study_name)
        if before is not None and [d.name.lower() for d in before.directions] != settings.directions:
            raise UserError(
                f"hydra.sweeper.direction={settings.directions if len(settings.directions) > 1 else settings.directions[0]}: "
                f"study {settings.study_name} in this storage optimises {[d.name.lower() for d in before.directions]}; "
                "give the same direction to continue it, or another hydra.sweeper.study_name."
            )
        trials_before = before.n_trials if before is not None else 0
        sampler = settings.build_sampler(grid_of(space, settings), seed_offset=trials_before)
        if trials_before:
            log.info(f"continuing study {settings.study_name}: {trials_before} trials so far")
        study = optuna.create_study(
            study_name=settings.study_name, storage=storage, sampler=sampler, pruner=settings.build_pruner(),
            directions=settings.directions, load_if_exists=True,
        )  # fmt: skip
        return StoredStudy(study, storage)

    def check_directories(self, stored: StoredStudy) -> None:
        """The trials' run directories are numbered by trial: a folder numbered beyond the study's trials belongs to
        another study, and the trial of that number would resume its run."""
        if OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir") != "${hydra.job.num}":
            return
        if not self.sweep_dir.is_dir():
            return
        known = len(stored.trials())
        foreign = sorted(
            int(p.name) for p in self.sweep_dir.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) >= known
        )
        if foreign:
            raise UserError(
                f"hydra.sweep.dir={self.sweep_dir} holds run directories ({', '.join(map(str, foreign[:5]))}) that study "
                f"{self.settings.study_name} has no trials for: they are another study's runs, which its next trials would "
                "take over. Continue that study (its hydra.sweeper.study_name and storage), or choose another hydra.sweep.dir."
            )

    def run_trials(self, stored: StoredStudy, space: SearchSpace, workers: int) -> None:
        settings, asked_out = self.settings, False
        while True:
            stopping = self.stopping()
            if not stopping and not asked_out:
                now = stored.progress()
                if too_many_failures(now, settings):
                    log.error(
                        f"hydra.sweeper.max_failure_rate={settings.max_failure_rate}: {failed_count(now)} of "
                        f"{len(now.finished)} trials failed; no further trial starts"
                    )
                    asked_out = True
                to_start = settings.n_trials - now.started  # queued trials (stopped ones run again) among them
                while not asked_out and len(self.in_flight) < workers and to_start > 0:
                    if not self.start_trial(stored, space, workers):
                        asked_out = True
                    to_start -= 1
            if not self.in_flight:
                if stopping or asked_out or not self.others_running(stored):
                    return
                time.sleep(min(settings.heartbeat_s, 5.0))  # another sweep's trials: they finish or are lost
                continue
            try:
                launch = self.returned.get(timeout=min(settings.heartbeat_s, 5.0))
            except queue.Empty:
                continue
            self.settle(stored, launch)

    def others_running(self, stored: StoredStudy) -> bool:
        """Whether trials of other processes still run (if lost, they are failed and queued for this sweep)."""
        stored.fail_lost(self.settings.stale_after_s, self.settings.retries, own=self.in_flight)
        now = stored.progress()
        return bool(now.running) or (bool(now.waiting) and now.started < self.settings.n_trials)

    def start_trial(self, stored: StoredStudy, space: SearchSpace, workers: int) -> bool:
        """Ask for a trial and launch it; False when the study holds n_trials already (another sweep asked first)."""
        from optuna.trial import TrialState

        trial = stored.study.ask(space.distributions)
        counted_before = [t for t in stored.progress().counted if t.number < trial.number]
        if len(counted_before) >= self.settings.n_trials:  # two sweeps asked at once: the later trial is surplus
            stored.set_user_attr(trial.number, records.STOPPED, "surplus")
            stored.study.tell(trial, state=TrialState.FAIL)
            return False
        stored.beat(trial.number)
        launch = Launch(trial.number, space.overrides(trial.params), time.time())
        retry = trial.user_attrs.get(records.RETRY_OF)
        drawn = " ".join(launch.overrides[: len(trial.params)])  # the fixed overrides follow, the same for every trial
        log.info(f"trial {trial.number}{f' (trial {retry} again)' if retry is not None else ''}: {drawn}")
        self.in_flight[trial.number] = launch
        if workers == 1:
            self.launch(launch)  # in this thread: the basic launcher runs the job here, with its signal handlers
        else:
            threading.Thread(target=self.launch, args=(launch,), name=f"trial {trial.number}", daemon=True).start()
        return True

    def launch(self, launch: Launch) -> None:
        try:
            self.launcher.launch([launch.overrides], initial_job_idx=launch.number)
        except Exception as error:  # the job's process died (a killed worker): the trial ends as failed
            launch.error = error
        finally:
            self.returned.put(launch)

    def settle(self, stored: StoredStudy, launch: Launch) -> None:
        """A launch returned: its job told the study how it ended, unless it died first (then it failed here)."""
        from optuna.trial import TrialState

        del self.in_flight[launch.number]
        trial = stored.trial(launch.number)
        if trial.state == TrialState.RUNNING:
            # Its job never told the study: stopped with the sweep, lost with a worker process the launcher lost (a
            # killed worker ends every job of joblib's pool: those are run again), or refused before it ran.
            lost = launch.error is None or isinstance(launch.error, BrokenProcessPool) or "shut" in str(launch.error)
            reason = "interrupted" if self.stopping() else "lost" if lost else "refused"
            detail = f": {type(launch.error).__name__}: {first_line(launch.error)}" if launch.error else ""
            log.error(f"trial {launch.number} ended without telling the study{detail}")
            stored.stop(launch.number, reason, self.settings.retries if reason != "refused" else 0)
            trial = stored.trial(launch.number)
        value = f" {trial.values[0] if len(trial.values or []) == 1 else trial.values}" if trial.values else ""
        log.info(f"trial {launch.number}: {trial.state.name.lower()}{value} after {time.time() - launch.started:.0f} s")

    def keep_beating(self, stored: StoredStudy) -> None:
        """The heartbeat of every launched trial, from its launch (a SLURM job may wait in the queue) to its end."""
        while not self.done.wait(self.settings.heartbeat_s):
            for number in list(self.in_flight):
                try:
                    stored.beat(number)
                except Exception as error:
                    log.warning(f"heartbeat of trial {number} not recorded ({type(error).__name__}: {error})")

    def stopping(self) -> bool:
        """A stop signal reached the sweep (the parallel launcher's mark): no further trial starts."""
        return stopping_file(self.sweep_dir).exists()


def study_exit_code(stored: StoredStudy, settings: SearchSettings) -> int:
    """0 when the study holds its n_trials trials, each completed or pruned; else 1."""
    now = stored.progress()
    ended_well = all(t.state.name in ("COMPLETE", "PRUNED") for t in now.finished)
    return 0 if ended_well and len(now.finished) >= settings.n_trials else 1


def failed_count(now: records.Progress) -> int:
    from optuna.trial import TrialState

    return sum(t.state == TrialState.FAIL for t in now.finished)


def too_many_failures(now: records.Progress, settings: SearchSettings) -> bool:
    return bool(now.finished) and failed_count(now) / max(len(now.finished), 1) > settings.max_failure_rate


def write_results(study: Any, path: Path) -> None:
    """optimization_results.yaml: the best trial's parameters and value (the Pareto front for several objectives)."""
    import yaml

    from gan_lightning.files import atomic_write

    done = [t for t in study.get_trials(deepcopy=False) if t.values is not None and t.state.name == "COMPLETE"]
    if not done:
        log.warning(f"no trial of study {study.study_name} completed: {path.name} not written")
        return
    if len(study.directions) == 1:
        best = study.best_trial
        results = {"name": "search", "study": study.study_name, "best_params": dict(best.params),
                   "best_value": best.value, "best_trial": best.number, "run_dir": best.user_attrs.get(records.RUN_DIR)}  # fmt: skip
    else:
        results = {"name": "search", "study": study.study_name,
                   "solutions": [{"params": dict(t.params), "values": list(t.values), "trial": t.number,
                                  "run_dir": t.user_attrs.get(records.RUN_DIR)} for t in study.best_trials]}  # fmt: skip
    atomic_write(path, yaml.safe_dump(results, sort_keys=False))
    log.info(f"best parameters: {path}")


def check_search(config: DictConfig, arguments: List[str]) -> SearchSpace:
    """Every check of a search that needs no study: its settings, its space (the preset's and the command line's),
    the sampler and pruner they build, the database it names, and a metric to prune on. The command line makes
    them before Hydra starts; the sweep again (the same settings, resolved in its own process)."""
    from gan_lightning.study.storage import check_storage

    settings = SearchSettings.of(config.hydra.sweeper)
    space = SearchSpace.parse(settings.params, arguments)
    settings.build_sampler(grid_of(space, settings), seed_offset=0)
    check_prunable(config, settings)
    check_storage(settings.storage)
    return space


def grid_of(space: Any, settings: SearchSettings) -> Optional[dict]:
    """The grid sampler's values, when the sweep uses it."""
    return space.grid() if str(settings.sampler.get("_target_", "")).endswith("GridSampler") else None


def check_prunable(config: DictConfig, settings: SearchSettings) -> None:
    """A pruner needs the optimised metric measured while the trial trains (metrics.every_n_steps)."""
    if not settings.prunes:
        return
    from gan_lightning.config import to_config

    job = copy.copy(config)
    with open_dict(job):
        job.pop("hydra", None)
    typed = to_config(job)
    metric = typed.optimized_metric
    measured = list(getattr(typed.metrics, "MEASURES", ()))
    every = getattr(typed.metrics, "every_n_steps", 0)
    if metric not in measured or not every or every >= typed.trainer.max_steps:
        raise UserError(
            f"hydra/sweeper/pruner={settings.pruner_name} decides on optimized_metric={metric} as the trial trains, but "
            f"metrics={typed.metrics.option} measures {', '.join(measured) or 'nothing'} every {every} of "
            f"{typed.trainer.max_steps} steps: choose a measured metric and a metrics.every_n_steps below trainer.max_steps."
        )

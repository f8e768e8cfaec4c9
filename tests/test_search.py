"""hydra/sweeper=search: Optuna studies as Hydra sweeps, trials pruned on the metrics they measure, studies kept in a
database, trials started as workers free."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import List, Optional

import optuna
import pytest
import yaml

from gan_lightning.checkpoints.resume import select_resume
from gan_lightning.config import compose
from gan_lightning.errors import UserError
from gan_lightning.results.runs import read_series
from gan_lightning.runs.summary import read_summary
from gan_lightning.study import records
from gan_lightning.study.settings import SearchSettings
from gan_lightning.study.space import SearchSpace
from gan_lightning.study.storage import load_study
from gan_lightning.study.trial import TrialLink
from gan_lightning.sweeps.search.report import best_so_far, trial_rows, write_study_report
from gan_lightning.tracking.wandb_records import WandbRun
from tests.conftest import cli
from tests.helpers.commands import run_command

optuna.logging.set_verbosity(optuna.logging.WARNING)

# ring8 with its mode metrics every 50 steps: reverse_kl is log 8 = 2.079 until G reaches a mode (lr 1e-9: never).
RING8 = ["hydra/sweeper=search", "data=ring8", "model=mlp", "metrics=toy2d", "metrics.every_n_steps=50",
         "optimized_metric=reverse_kl", "callbacks.samples_every_n_steps=0", "callbacks.progress_every_n_steps=0"]  # fmt: skip
PARALLEL = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]


def settings_with(*overrides: str) -> SearchSettings:
    return SearchSettings.of(compose(["hydra/sweeper=search", *overrides], with_hydra=True).hydra.sweeper)


# --- the search space


def test_the_search_space_reads_the_grammar_hparams_search_presets_are_written_in():
    space = SearchSpace.parse(
        {
            "optimizer.g.lr": "tag(log, interval(1e-5, 1e-2))",
            "trainer.d_steps": "int(interval(1, 5))",
            "objective": "choice(nonsaturating, hinge)",
            "regularization.ema_decay": "choice(0.99, 0.999)",
            "model.latent_dim": "range(2, 10, 4)",
            "data": "ring8",
        },  # fmt: skip
        ["optimizer.d.lr=interval(0.1, 0.5)", "seed=3"],
    )
    d = space.distributions
    assert (d["optimizer.g.lr"].low, d["optimizer.g.lr"].high, d["optimizer.g.lr"].log) == (1e-5, 1e-2, True)
    assert type(d["trainer.d_steps"]).__name__ == "IntDistribution" and (
        d["trainer.d_steps"].low,
        d["trainer.d_steps"].high,
    ) == (1, 5)
    assert d["objective"].choices == ("nonsaturating", "hinge") and d["regularization.ema_decay"].choices == (
        0.99,
        0.999,
    )
    # range stops before its end, as Python's and Hydra's do: 2 and 6, not 10
    assert (d["model.latent_dim"].low, d["model.latent_dim"].high, d["model.latent_dim"].step) == (2, 6, 4)
    assert type(d["optimizer.d.lr"]).__name__ == "FloatDistribution" and not d["optimizer.d.lr"].log
    assert space.fixed == {"data": "data=ring8", "seed": "seed=3"}
    # the command line's value takes the place of the preset's
    assert SearchSpace.parse({"seed": "choice(1, 2)"}, ["seed=4"]).fixed == {"seed": "seed=4"}


def test_drawn_values_reach_the_trial_as_the_values_drawn():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    space = SearchSpace.parse({"a": "interval(0, 1)"}, ["b=1"])
    params = {"a": 0.1 + 0.2, "c": 1e-05, "d": True, "e": "hinge", "f": 3}
    overrides = space.overrides(params)
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
    assert parsed == {**params, "b": 1}  # 0.30000000000000004 in full, not 0.3
    assert overrides[-1] == "b=1"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"a": "interval(2, 1)"}, "a=interval(2, 1): interval(2.0, 1.0) is empty"),
        ({"a": "tag(log, interval(0, 1))"}, "a log scale needs a lower end above 0, not 0"),
        ({"a": "range(5, 1)"}, "holds no value"),
        ({"a": "choice(1, 1)"}, "a choice lists a value twice"),
    ],
)
def test_a_space_optuna_cannot_draw_from_is_refused_by_name(params, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SearchSpace.parse(params)


def test_the_grid_sampler_lists_discrete_values_and_refuses_continuous_ones():
    grid = SearchSpace.parse({"a": "choice(x, y)", "b": "int(interval(1, 3))", "c": "range(0, 6, 2)"}).grid()
    assert grid == {"a": ["x", "y"], "b": [1, 2, 3], "c": [0, 2, 4]}
    with pytest.raises(UserError, match="the grid sampler takes choice"):
        SearchSpace.parse({"a": "interval(0.1, 1)"}).grid()


# --- pruning: the decision a job gets through the study equals Optuna's own


STEPS = list(range(100, 900, 100))


def history_curve(index: int, step: int) -> float:
    """Earlier trials: curves that fall with the steps, trial i offset by 0.1 i."""
    return 2.0 - step / 1000 + 0.1 * index


def first_stop(decide, curve) -> Optional[int]:
    """The step at which ``decide(value, step)`` first stops the curve; None if it runs to the end."""
    for step in STEPS:
        if decide(curve(step), step):
            return step
    return None


def run_curve(study, curve, decide=None) -> Optional[int]:
    """A trial that reports ``curve`` and asks the pruner at every step, ended as the pruner says."""
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 10)})

    def own_decision(value, step):
        trial.report(value, step)
        return trial.should_prune()

    stop = first_stop(decide(trial.number) if decide else own_decision, curve)
    if stop is None:
        study.tell(trial.number, curve(STEPS[-1]))
    else:
        study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
    return stop


PRUNERS = {
    "median": ["hydra.sweeper.pruner.n_startup_trials=3"],
    "successive_halving": ["hydra.sweeper.pruner.min_resource=100", "hydra.sweeper.pruner.reduction_factor=2"],
    "hyperband": [
        "hydra.sweeper.pruner.min_resource=100",
        "hydra.sweeper.pruner.max_resource=800",
        "hydra.sweeper.pruner.reduction_factor=2",
    ],  # fmt: skip
}


@pytest.mark.parametrize("pruner", list(PRUNERS))
def test_each_pruner_stops_a_hopeless_curve_and_keeps_a_good_one_as_optuna_itself_decides(tmp_path, pruner):
    settings = settings_with(f"hydra/sweeper/pruner={pruner}", *PRUNERS[pruner], "hydra.sweeper.study_name=constructed")
    curves = [lambda step, i=i: history_curve(i, step) for i in range(12)]
    curves += [lambda step: 5.0, lambda step: 1.0 - step / 1000]  # hopeless, then good
    optuna.create_study(study_name="constructed", storage=f"sqlite:///{tmp_path / 'study.db'}")
    # Each trial as a job finds it: the storage of the sweep directory and the trial's number, never the sweep's memory.
    stored = load_study(None, tmp_path, "constructed", settings.build_pruner()).study
    link = lambda number: (
        TrialLink(load_study(None, tmp_path, "constructed", settings.build_pruner()), number, settings).should_stop
    )
    reference = optuna.create_study(study_name="constructed", pruner=settings.build_pruner())  # Optuna alone, in memory
    through_storage = [run_curve(stored, curve, link) for curve in curves]
    by_optuna = [run_curve(reference, curve) for curve in curves]
    assert through_storage == by_optuna
    hopeless, good = through_storage[-2:]
    assert good is None and hopeless is not None
    if pruner == "median":  # the rule itself: worse than the median of the completed trials at the first step
        assert hopeless == 100 and 5.0 > sorted(history_curve(i, 100) for i in range(12))[6]
    stored_trial = stored.get_trials()[-2]
    assert stored_trial.state.name == "PRUNED"
    assert stored_trial.intermediate_values == {step: 5.0 for step in STEPS if step <= hopeless}


# --- lost trials, counting, the report


def test_a_lost_trial_fails_and_its_parameters_run_again_as_long_as_retries_last(tmp_path):
    optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s")
    stored = load_study(None, tmp_path, "s")
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    alive, lost = stored.study.ask(distributions), stored.study.ask(distributions)
    stored.beat(alive.number)
    stored.storage.set_trial_system_attr(stored.trial_id(lost.number), records.HEARTBEAT, time.time() - 100)
    # its start counts as a sign of life too: lost only once both are older than stale_after_s
    assert stored.fail_lost(stale_after_s=1000, retries=1) == []
    time.sleep(1.1)
    assert stored.fail_lost(stale_after_s=1.0, retries=1, own=[alive.number]) == [lost.number]
    trials = stored.study.get_trials()
    assert trials[lost.number].state.name == "FAIL" and trials[lost.number].user_attrs[records.STOPPED] == "lost"
    assert trials[alive.number].state.name == "RUNNING"
    again = stored.study.ask(distributions)  # the queued parameters come first
    assert again.params == lost.params and again.user_attrs[records.RETRY_OF] == lost.number
    assert [t.number for t in stored.progress().counted] == [alive.number, again.number]  # the lost trial counts once
    time.sleep(1.1)
    assert stored.fail_lost(stale_after_s=1.0, retries=1, own=[alive.number]) == [again.number]
    assert len(stored.trials()) == 3  # retries=1: the parameters ran twice, not queued a third time
    assert [t.number for t in stored.progress().finished] == [again.number]


def test_the_study_report_names_the_best_trial_and_the_best_value_against_steps_and_time(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s")
    distributions = {"lr": optuna.distributions.FloatDistribution(0, 1, log=False)}
    outcome = [
        (0.5, "COMPLETE", 300, 3.0),
        (0.2, "PRUNED", 100, 1.0),
        (0.3, "COMPLETE", 300, 2.0),
        (0.9, "COMPLETE", 300, 4.0),
    ]
    for number, (value, state, steps, _) in enumerate(outcome):
        trial = study.ask(distributions)
        run_dir = tmp_path / str(number)
        run_dir.mkdir()
        (run_dir / "summary.json").write_text(json.dumps({"global_step": steps, "wall_time_s": 10.0 * (number + 1)}))
        trial.set_user_attr(records.RUN_DIR, str(run_dir))
        trial.report(value, 100)
        study.tell(trial, value if state == "COMPLETE" else None, state=getattr(optuna.trial.TrialState, state))
    rows = trial_rows(study)
    assert [(r.number, r.state, r.steps) for r in rows] == [
        (0, "complete", 300),
        (1, "pruned", 100),
        (2, "complete", 300),
        (3, "complete", 300),
    ]
    # steps spent so far count the pruned trial's 100; its value (measured early) does not compete for the best
    assert [(p["steps"], p["best"]) for p in best_so_far(rows, maximize=False)] == [
        (300, 0.5),
        (400, 0.5),
        (700, 0.3),
        (1000, 0.3),
    ]
    settings = settings_with("hydra.sweeper.study_name=s", "hydra.sweeper.n_trials=4")
    text = write_study_report(study, tmp_path, settings, "fid").read_text()
    assert "Trials: 3 complete, 1 pruned" in text
    assert f"Trial 2: 0.3, run directory `{tmp_path / '2'}`." in text and "`optimized_metric=fid`" in text
    assert "| 2 | 700 |" in text and (tmp_path / "study_progress.png").stat().st_size > 10_000


# --- real searches


@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory):
    """Four ring8 trials, two at a time, G's learning rate 1e-3 or 1e-9 (the random sampler's seed 6 draws: good, good,
    hopeless, good); the median pruner judges from the first completed trial on; W&B offline."""
    root = tmp_path_factory.mktemp("search")
    sweep = root / "sweep"
    args = ["-m", *RING8, *PARALLEL, "logger=wandb", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=6",
            "hydra.sweeper.n_trials=4", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
            "trainer.max_steps=300", "optimizer.g.lr=choice(0.001,1e-9)", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    result = run_command(args, cwd=root)
    return sweep, result


def test_a_hopeless_trial_is_pruned_where_its_curve_falls_behind_with_its_checkpoint_and_logs(pruned_search):
    sweep, result = pruned_search
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f"sweep {sweep}: 4 jobs: 3 completed, 1 pruned" in output
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{sweep / 'study.db'}")
    trials = study.get_trials()
    assert [t.params["optimizer.g.lr"] for t in trials] == [0.001, 0.001, 1e-9, 0.001]
    hopeless = trials[2]
    # log 8 at step 50 for every trial (no trial is worse there); at step 100 the trained ones have reached modes
    assert hopeless.state.name == "PRUNED" and sorted(hopeless.intermediate_values) == [50, 100]
    assert hopeless.value == hopeless.intermediate_values[100] == pytest.approx(math.log(8))
    summary = read_summary(sweep / "2")
    assert summary["status"] == "pruned" and summary["global_step"] == 100
    assert summary["trial"] == {"study": "search", "number": 2}
    assert select_resume("auto", sweep / "2").steps_done == 100  # its checkpoint, to continue it later
    assert max(step for step, _ in read_series(sweep / "2" / "csv" / "metrics.csv")["metrics/reverse_kl"]) == 100
    (wandb_run,) = (sweep / "2" / "wandb").glob("*run-*")
    assert "pruned" in WandbRun(wandb_run).run["tags"]
    assert trials[0].state.name == "COMPLETE" and read_summary(sweep / "0")["global_step"] == 300
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == study.best_value and results["run_dir"] == str(sweep / str(study.best_trial.number))
    assert "Trials: 3 complete, 1 pruned" in (sweep / "study.md").read_text()
    # the report's tables and figure as a W&B run of the sweep's group, beside the trials' runs
    (folder,) = (sweep / "wandb").glob("offline-run-*")
    run = WandbRun(folder)
    assert run.run["job_type"] == "study" and run.run["group"] == WandbRun(wandb_run).run["group"]
    assert {"study/trials", "study/best_so_far", "study/progress"} <= {key for row in run.history for key in row}
    (table_file,) = folder.glob("files/media/table/study/trials_*.table.json")
    table = json.loads(table_file.read_text())
    assert [row[:2] for row in table["data"]] == [[0, "complete"], [1, "complete"], [2, "pruned"], [3, "complete"]]


def test_optuna_dashboard_reads_the_trials_and_their_intermediate_values_from_the_studys_storage(
    pruned_search, tmp_path
):
    import socket
    import subprocess
    import sys

    sweep, _ = pruned_search
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The command the study report prints, as a user runs it.
    command = (sweep / "study.md").read_text().split("optuna-dashboard: `")[1].split("`")[0].split()
    executable = Path(sys.executable).parent / command[0]  # the console script beside this Python
    server = subprocess.Popen([str(executable), *command[1:], "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        studies = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as answer:
                    studies = json.load(answer)["study_summaries"]
                break
            except OSError:
                time.sleep(0.2)
        (summary,) = studies
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", timeout=10) as answer:
            detail = json.load(answer)
    finally:
        server.terminate()
        server.wait(10)
    assert summary["study_name"] == "search"
    states = [t["state"] for t in detail["trials"]]
    assert states == ["Complete", "Complete", "Pruned", "Complete"]
    pruned = detail["trials"][2]
    assert [v["step"] for v in pruned["intermediate_values"]] == [50, 100]


def start_times(sweep: Path, jobs: List[str]):
    spans = {}
    for job in jobs:
        summary = read_summary(sweep / job)
        spans[job] = tuple(datetime.fromisoformat(summary[k]).timestamp() for k in ("started_at", "ended_at"))
    return spans


def test_a_trial_starts_as_soon_as_a_worker_is_free_not_when_its_batch_ends(tmp_path):
    # Trial lengths drawn by the random sampler's seed 0: 600, 60, 600, 600, 60, 60 steps, two workers.
    sweep = tmp_path / "sweep"
    args = ["-m", *RING8, *PARALLEL, "metrics=none", "optimized_metric=loss/d", "hydra/sweeper/sampler=random",
            "hydra.sweeper.sampler.seed=0", "hydra.sweeper.n_trials=6", "trainer.max_steps=choice(60,600)",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    result = run_command(args, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    steps = [read_summary(sweep / str(job))["global_step"] for job in range(6)]
    assert steps == [600, 60, 600, 600, 60, 60]
    spans = start_times(sweep, [str(job) for job in range(6)])
    # Trial 2 took the worker trial 1 freed while trial 0 still trained: a batch of two would have waited for trial 0.
    assert spans["1"][1] <= spans["2"][0] < spans["0"][1]
    starts = sorted(span[0] for span in spans.values())
    events = sorted({t for span in spans.values() for t in span})
    in_flight = [
        sum(a <= (x + y) / 2 < b for a, b in spans.values()) for x, y in zip(events, events[1:]) if x < starts[-1]
    ]
    assert max(in_flight) == 2
    # Between a trial's end and the next one's start the worker is briefly idle (the next run sets itself up); never
    # for as long as a trial of 600 steps.
    gaps = []
    for later in starts[2:]:
        ended_before = [span[1] for span in spans.values() if span[1] <= later]
        gaps.append(later - max(ended_before))
    assert max(gaps) < min(span[1] - span[0] for job, span in spans.items() if steps[int(job)] == 600)


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_the_same_command_again_continues_the_study_without_training_a_finished_trial_again(tmp_path, storage):
    sweep = tmp_path / "sweep"
    args = ["-m", *RING8, "metrics=none", "optimized_metric=loss/d", "trainer.max_steps=30",
            "optimizer.g.lr=tag(log,interval(1e-4,1e-2))", f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    first = run_command([*args, "hydra.sweeper.n_trials=2"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = {job: (sweep / job / "summary.json").read_bytes() for job in "01"}
    again = run_command([*args, "hydra.sweeper.n_trials=3"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing study search: 2 trials so far" in again.stdout + again.stderr
    assert {job: (sweep / job / "summary.json").read_bytes() for job in "01"} == before  # not trained again
    # the study lives in the sweep directory: a SQLite file, or Optuna's file journal (for shared file systems)
    study = load_study(storage, sweep, "search").study
    assert (sweep / ("study.db" if storage == "sqlite" else "study.journal")).is_file()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert read_summary(sweep / "2")["trial"]["number"] == 2 and not (sweep / "3").exists()
    # a resumed study draws new points: its sampler's seed moves on by the trials it has
    assert len({t.params["optimizer.g.lr"] for t in study.trials}) == 3


@pytest.mark.slow
def test_a_search_killed_by_sigkill_continues_its_study_when_started_again(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    args = ["-m", *RING8, "metrics=none", "optimized_metric=loss/d", "logger=csv", "trainer.max_steps=1500",
            "optimizer.g.lr=tag(log,interval(1e-4,1e-2))", "hydra.sweeper.n_trials=3", "hydra.sweeper.heartbeat_s=1",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    command = [sys.executable, "-m", "gan_lightning.run", *args]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and not ((sweep / "0" / "summary.json").exists() and (sweep / "1" / "csv").exists()):
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGKILL)  # mid-trial 1: nothing can tell the study
    process.wait()
    finished = (sweep / "0" / "summary.json").read_bytes()
    result = cli(args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{sweep / 'study.db'}")
    trials = study.get_trials()
    # trial 1 was lost with its process: failed, its parameters ran again as a later trial (2 or 3, as the restarted
    # sweep found it lost before or after it asked for a new one); numbers continue
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].user_attrs[records.STOPPED] == "lost"
    (retry,) = [t for t in trials if t.user_attrs.get(records.RETRY_OF) == 1]
    assert retry.number in (2, 3) and retry.params == trials[1].params
    assert (sweep / "0" / "summary.json").read_bytes() == finished  # the finished trial was not trained again
    for number in (0, 2, 3):  # each trial in a directory of its own
        assert read_summary(sweep / str(number))["trial"]["number"] == number
    assert not (sweep / "1" / "summary.json").exists()  # the lost trial's directory is as the kill left it


@pytest.mark.slow
def test_two_sweeps_on_one_postgresql_database_share_the_study_without_running_a_trial_twice(tmp_path, postgres):
    import subprocess
    import sys

    from tests.helpers.postgres import new_database

    storage = new_database(postgres, "shared_study")
    sweep = tmp_path / "sweep"
    args = ["-m", *RING8, "metrics=none", "optimized_metric=loss/d", "logger=csv", "trainer.max_steps=200",
            "optimizer.g.lr=tag(log,interval(1e-4,1e-2))", "hydra.sweeper.n_trials=6", f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    command = [sys.executable, "-m", "gan_lightning.run", *args]
    workers = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]  # fmt: skip
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    study = optuna.load_study(study_name="search", storage=storage)
    counted = records.progress(study.get_trials()).counted
    assert [t.state.name for t in counted] == ["COMPLETE"] * 6
    launched = {n: sum(f"trial {n}: optimizer" in o for o in outputs) for n in range(6)}
    assert set(launched.values()) == {1}  # every trial launched once, by one sweep or the other
    assert all(sum(f"trial {n}: optimizer" in o for n in range(6)) > 0 for o in outputs)  # both sweeps worked
    for number in range(6):
        assert read_summary(sweep / str(number))["trial"]["number"] == number


@pytest.mark.slow
def test_a_search_stopped_by_ctrl_c_queues_the_stopped_trial_and_the_same_command_finishes_the_study(tmp_path):
    import signal
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    args = ["-m", *RING8, "metrics=none", "optimized_metric=loss/d", "logger=csv", "trainer.max_steps=3000",
            "optimizer.g.lr=tag(log,interval(1e-4,1e-2))", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "gan_lightning.run", *args], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline and not list((sweep / "0" / "checkpoints").glob("*.ckpt")):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 130, output[-3000:]
    assert read_summary(sweep / "0")["status"] == "interrupted"
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{sweep / 'study.db'}")
    stopped, queued = study.get_trials()
    assert stopped.state.name == "FAIL" and stopped.user_attrs[records.STOPPED] == "interrupted"
    assert queued.state.name == "WAITING" and queued.user_attrs[records.RETRY_OF] == 0  # its parameters queued
    result = run_command([*args[:-2], "trainer.max_steps=100", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}"],
                         cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    trials = optuna.load_study(study_name="search", storage=f"sqlite:///{sweep / 'study.db'}").get_trials()
    # the queued parameters ran first (as trial 1), then one more trial: two trials counted, both complete
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].params == stopped.params and read_summary(sweep / "1")["status"] == "completed"

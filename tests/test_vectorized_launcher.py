"""hydra/launcher=vectorized through the real command line: groups formed from the sweep, each member a complete run
equal to its separate job, resumed like one, and refusals before training."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from omegaconf import OmegaConf

from gan_lightning.runs.summary import read_summary
from gan_lightning.sweeps.vectorized.launcher import plan, quoted, seed_of
from gan_lightning.tracking.wandb_records import WandbRun
from tests.conftest import cli
from tests.helpers.commands import run_command
from tests.test_parallel import log_times

# Each member a complete run: W&B and the CSV log included.
TOY = ["data=ring8", "model=mlp", "logger=wandb", "callbacks.progress_every_n_steps=0"]
VECTORIZED = "hydra/launcher=vectorized"


def weights(run_dir: Path) -> Dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def csv_rows(run_dir: Path) -> List[Dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def wandb_runs(run_dir: Path) -> List[WandbRun]:
    return [WandbRun(folder) for folder in sorted((run_dir / "wandb").glob("*run-*"))]


def relative_difference(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(
        ((a[k].double() - b[k].double()).abs().max() / b[k].double().abs().max().clamp(min=1e-12)).item() for k in a
    )


def test_groups_are_the_jobs_that_differ_only_in_their_seed():
    jobs = [
        (0, ["lr=1", "seed=0"]),
        (1, ["lr=1", "seed=1"]),
        (2, ["lr=2", "seed=0"]),
        (3, ["lr=2", "seed=1"]),
        (4, ["lr=1", "seed=2"]),
        (5, ["lr=3"]),
    ]
    assert [[n for n, _ in group] for group in plan(jobs)] == [[0, 1, 4], [2, 3], [5]]
    assert [[n for n, _ in group] for group in plan(jobs, max_members=2)] == [[0, 1], [4], [2, 3], [5]]
    assert seed_of(["seed=12"]) == 12 and seed_of(["seed=${oc.env:S}"]) is None and seed_of(["lr=1"]) is None
    assert OmegaConf.create({"x": f"{quoted('a b')}"}).x == "'a b'"


def test_a_vectorized_sweep_leaves_each_job_the_run_its_separate_job_leaves(tmp_path):
    # Two settings × two seeds: two groups of two (jobs 0 and 2, 1 and 3: the sweep varies the seed slowest). In float64 each member trains what the basic launcher's job
    # with its seed trains, so every file a run leaves can be compared with that job's.
    overrides = [*TOY, "trainer.max_steps=20", "trainer.precision=64-true", "metrics=toy2d", "metrics.every_n_steps=10",
                 "callbacks.samples_every_n_steps=10", "trainer.d_steps=2", "regularization.ema_decay=0.9",  # samples and metrics from G's EMA
                 "seed=0,1", "objective=nonsaturating,hinge"]  # fmt: skip
    vectorized, basic = tmp_path / "vectorized", tmp_path / "basic"
    result = cli(["-m", *overrides, VECTORIZED, f"hydra.sweep.dir={vectorized}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("vectorized group of 2 seeds (0, 1)") == 2 and "Traceback" not in output
    assert f"sweep {vectorized}: 4 jobs: 4 completed" in output
    # One line per group, not per member: where W&B logs, and where the members' runs are.
    assert output.count("W&B: offline") == 2 and "run directory:" not in output
    assert f"run directories of 2 seeds: {vectorized}/{{0,2}}" in output and f"{vectorized}/{{1,3}}" in output
    reference = run_command(["-m", *overrides, f"hydra.sweep.dir={basic}"], cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]
    run_ids = set()
    for job in "0123":
        mine, theirs = read_summary(vectorized / job), read_summary(basic / job)
        assert mine["status"] == "completed" and mine["global_step"] == 20 and mine["overrides"] == theirs["overrides"]
        assert mine["metrics"].keys() == theirs["metrics"].keys() and "modes" in mine["metrics"]
        for key, value in theirs["metrics"].items():
            assert mine["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
        assert mine["metrics_protocol"] == theirs["metrics_protocol"]
        assert (mine["group_size"], mine["machine"]) == (2, theirs["machine"]) and "group_size" not in theirs
        assert mine["wall_time_s"] == read_summary(vectorized / str(int(job) ^ 2))["wall_time_s"]  # the group's, shared
        assert relative_difference(weights(vectorized / job), weights(basic / job)) < 1e-9
        rows, their_rows = csv_rows(vectorized / job), csv_rows(basic / job)
        assert [row["step"] for row in rows] == [row["step"] for row in their_rows]
        for row, their_row in zip(rows, their_rows):
            assert row.keys() == their_row.keys()
            for key in row:
                if row[key] and key != "epoch" and not key.startswith("time/"):  # the wall clock is the run's own
                    assert float(row[key]) == pytest.approx(float(their_row[key]), rel=1e-6, abs=1e-9), key
        assert sorted(p.name for p in (vectorized / job / "samples").glob("*.png")) == sorted(
            p.name for p in (basic / job / "samples").glob("*.png")
        )
        assert OmegaConf.load(vectorized / job / ".hydra" / "overrides.yaml") == OmegaConf.load(
            basic / job / ".hydra" / "overrides.yaml"
        )
        seed = OmegaConf.load(basic / job / ".hydra" / "config.yaml").seed
        assert OmegaConf.load(vectorized / job / ".hydra" / "config.yaml") == OmegaConf.load(
            basic / job / ".hydra" / "config.yaml"
        )
        # Its own W&B run, read back from the offline files, holding its own values.
        (run,) = wandb_runs(vectorized / job)
        run_ids.add(run.run["run_id"])
        logged = run.metric("loss/d")
        assert len(logged) == len(theirs_logged := wandb_runs(basic / job)[0].metric("loss/d")) > 0
        assert [value for _, value in logged] == pytest.approx([value for _, value in theirs_logged], rel=1e-6)
        assert run.config["seed"] == seed and run.exit_code == 0
        assert run.summary["metrics_protocol"] == mine["metrics_protocol"]
    assert len(run_ids) == 4


def test_a_stopped_vectorized_sweep_resumes_every_member_where_it_stopped(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, "trainer.max_steps=3000", "callbacks.checkpoint_every_n_steps=50", "callbacks.samples_every_n_steps=0", "seed=0,1,2",
            VECTORIZED, f"hydra.sweep.dir={sweep}"]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "gan_lightning.run", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while not all((sweep / job / "checkpoints" / "last.ckpt").exists() for job in "012"):
        assert time.time() < deadline and process.poll() is None, "the members wrote no checkpoint"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 128 + signal.SIGINT, output[-3000:]
    assert "Traceback" not in output
    stopped = [read_summary(sweep / job) for job in "012"]
    steps = stopped[0]["global_step"]
    assert 50 <= steps < 3000 and all(s["status"] == "interrupted" and s["global_step"] == steps for s in stopped)
    assert all(
        torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)["gan_lightning"]["steps_done"] == steps
        for job in "012"
    )

    # The same command, with fewer steps left: every member continues from its own checkpoint.
    args[args.index("trainer.max_steps=3000")] = f"trainer.max_steps={steps + 40}"
    resumed = run_command(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming 3 members from their checkpoints at step {steps}" in resumed.stderr
    for job, before in zip("012", stopped):
        summary = read_summary(sweep / job)
        assert summary["status"] == "completed" and summary["global_step"] == steps + 40
        # The run's wall time is both segments' (the stopped process's, then the resumed group's).
        assert summary["wall_time_s"] == pytest.approx(before["wall_time_s"] + summary["segment_wall_time_s"], abs=2e-3)
        assert summary["segment_wall_time_s"] > 0 and "segment_wall_time_s" not in before
        ids = [run.run["run_id"] for run in wandb_runs(sweep / job)]
        assert len(ids) == 2 and len(set(ids)) == 1  # one W&B run, continued
        logged = [int(row["step"]) for row in csv_rows(sweep / job) if row["loss/d"]]
        assert logged == sorted(set(logged)) and logged[-1] == steps + 40  # no row lost or written twice

    # What it trained is what an uninterrupted group of the same seeds trains, bit for bit.
    straight = tmp_path / "straight"
    uninterrupted = run_command([*args[:-1], f"hydra.sweep.dir={straight}"], cwd=tmp_path)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    for job in "012":
        mine, theirs = weights(sweep / job), weights(straight / job)
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)

    # A member's checkpoint is a separate run's: the basic launcher continues each job from it, in the same W&B run.
    separately = [a for a in args if a != VECTORIZED]
    separately[separately.index(f"trainer.max_steps={steps + 40}")] = f"trainer.max_steps={steps + 60}"
    continued = run_command(separately, cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr[-3000:]
    for job in "012":
        assert (
            f"resuming from {sweep / job / 'checkpoints' / 'last.ckpt'} at step {steps + 40}"
            in (sweep / job / "run.log").read_text()
        )
        summary = read_summary(sweep / job)
        assert summary["global_step"] == steps + 60
        assert (
            summary["wall_time_s"] > stopped[int(job)]["wall_time_s"] + summary["segment_wall_time_s"]
        )  # three segments
        assert len({run.run["run_id"] for run in wandb_runs(sweep / job)}) == 1


def test_settings_a_group_cannot_reproduce_are_refused_before_training_and_runs_stay_as_they_were(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_command(
        ["-m", *TOY, "trainer.max_steps=5", "seed=0,1", VECTORIZED, f"hydra.sweep.dir={sweep}"], cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    before = {job: (sweep / job / "summary.json").read_text() for job in "01"}
    refused = run_command(
        ["-m", *TOY, "trainer.max_steps=5", "seed=0,1", "trainer.on_nan=skip", VECTORIZED, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "trainer.on_nan=skip cannot be trained with vectorized seeds; allowed: stop" in refused.stderr
    assert {job: (sweep / job / "summary.json").read_text() for job in "01"} == before
    # In a new sweep directory the refusal comes before any job's directory is made (docs/scaling.md).
    fresh = tmp_path / "fresh"
    refused = run_command(
        ["-m", *TOY, "seed=0,1", "model.d_dropout=0.2", VECTORIZED, f"hydra.sweep.dir={fresh}"], cwd=tmp_path
    )
    assert refused.returncode != 0 and "model.d_dropout=0.2 cannot be trained with vectorized seeds" in refused.stderr
    assert not (fresh / "0").exists() and not (fresh / "1").exists()


def test_groups_run_side_by_side_with_the_parallel_launcher(tmp_path):
    # Four seeds in groups of two, two groups at a time: each group in a worker process of its own.
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, "trainer.max_steps=300", "callbacks.progress_every_n_steps=50", "seed=0,1,2,3", VECTORIZED, "hydra.launcher.groups=parallel",
            "hydra.launcher.parallel.n_jobs=2", "hydra.launcher.max_members=2", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    result = cli(args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "vectorized group of 2 seeds (0, 1)" in output and "vectorized group of 2 seeds (2, 3)" in output
    assert f"sweep {sweep}: 4 jobs: 4 completed" in output
    for job in "0123":
        assert read_summary(sweep / job)["global_step"] == 300
    # Members of a group share their group's log lines (its progress: the members' means); groups differ.
    progress = {
        job: [
            line.split("] - ")[1]
            for line in (sweep / job / "run.log").read_text().splitlines()
            if "step 50/300" in line
        ]
        for job in "0123"
    }
    assert (
        progress["0"] == progress["1"]
        and progress["2"] == progress["3"]
        and progress["0"] != progress["2"]
        and len(progress["0"]) == 1
    )
    # whose numbers they are: the members' median and range
    assert progress["0"][0].startswith("step 50/300 | 2 seeds, median [min-max]: loss/d ")
    first, second = log_times(sweep / "0"), log_times(sweep / "2")
    assert first[0] < second[-1] and second[0] < first[-1]  # the groups trained at the same time
    assert len({run.run["run_id"] for job in "0123" for run in wandb_runs(sweep / job)}) == 4

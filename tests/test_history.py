"""A run's history survives every interruption: continuous logs, one W&B run, a locked directory, honest exit codes.

Every test drives the real command line (``python -m gan_lightning.run``) and kills or signals the real process.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.overrides import check_command_line
from gan_lightning.runs.summary import read_summary
from gan_lightning.tracking.wandb_records import WandbRun
from tests.conftest import REPO, cli
from tests.helpers.commands import command, run_command

# W&B and the CSV log, the run's history being the subject here.
TOY = [
    "data=ring8",
    "model=mlp",
    "logger=wandb",
    "callbacks.progress_every_n_steps=0",
    "callbacks.samples_every_n_steps=0",
]
LOGGED = [*TOY, "trainer.log_every_n_steps=10", "callbacks.checkpoint_every_n_steps=50"]


def start(args: List[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def checkpoint_step(run_dir: Path) -> int:
    path = run_dir / "checkpoints" / "last.ckpt"
    return load_safely(path)["gan_lightning"]["steps_done"] if path.exists() else 0


def wait_for(condition, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended early: {process.communicate()[1][-3000:]}"
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def csv_steps(run_dir: Path, column: str = "loss/d") -> List[int]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return [int(float(row["step"])) for row in csv.DictReader(f) if row.get(column)]


def wandb_segments(run_dir: Path) -> List[WandbRun]:
    return [WandbRun(folder) for folder in sorted((run_dir / "wandb").glob("*run-*"))]


def logged_steps(segments: List[WandbRun], key: str = "loss/d") -> List[int]:
    return sorted(int(row["trainer/global_step"]) for run in segments for row in run.history if key in row)


def file_hashes(folder: Path) -> Dict[str, str]:
    """Every file under ``folder`` by its content's hash; a link by where it points, not by its target's content:
    W&B links each run's ``debug-core.log`` to one log of its service in the user's cache, which every process
    that starts W&B in the same second writes to."""
    return {
        str(p.relative_to(folder)): os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


@pytest.mark.slow
def test_five_kills_leave_every_logged_step_once_in_the_csv_log_and_in_one_wandb_run(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "data=ring8", "model=mlp", "logger=wandb", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=100",
        "trainer.log_every_n_steps=10", "callbacks.checkpoint_every_n_steps=50", "trainer.max_steps=1000", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    rng = random.Random(os.getpid())
    kills = []
    for _ in range(5):
        process = start(args, tmp_path)
        reached = checkpoint_step(run_dir)
        wait_for(lambda reached=reached: checkpoint_step(run_dir) > reached, process)  # some progress in every segment
        time.sleep(rng.uniform(0.0, 0.4))  # then a kill at a random point of the training loop
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills.append(checkpoint_step(run_dir))
    assert kills == sorted(set(kills)) and kills[-1] < 1000, kills
    finished = run_command(args, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert read_summary(run_dir)["global_step"] == 1000

    every_logged_step = list(range(10, 1001, 10))  # step N's values are logged at step N
    assert csv_steps(run_dir) == every_logged_step, f"killed at checkpoints {kills}"

    segments = wandb_segments(run_dir)
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    # W&B writes its records lazily: a killed segment may hold none, and its scalars come from the CSV log.
    assert len(segments) == 6 and all(s.path.parent.name.endswith(f"-{run_id}") for s in segments)
    assert {s.run["run_id"] for s in segments if s.run} == {run_id}
    assert logged_steps(segments) == every_logged_step, f"killed at checkpoints {kills}"
    assert logged_steps(segments, "samples") == list(range(100, 1001, 100)), f"killed at checkpoints {kills}"
    # The CSV log and W&B agree on the values: the resumed segments replayed exactly what was lost.
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        csv_loss = {int(float(r["step"])): float(r["loss/d"]) for r in csv.DictReader(f) if r.get("loss/d")}
    wandb_loss = {int(r["trainer/global_step"]): r["loss/d"] for s in segments for r in s.history if "loss/d" in r}
    assert wandb_loss.keys() == csv_loss.keys()
    assert max(abs(wandb_loss[k] - csv_loss[k]) for k in csv_loss) < 1e-6
    log = (run_dir / "run.log").read_text()
    assert log.count("resuming from") == 5 and log.count("run directory:") == 1


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR2])
def test_a_stop_signal_checkpoints_the_current_step_and_exits_with_128_plus_its_number(tmp_path, signum):
    run_dir = tmp_path / "run"
    args = [
        *TOY,
        "trainer.log_every_n_steps=1",
        "callbacks.checkpoint_every_n_steps=100000",
        f"hydra.run.dir={run_dir}",
    ]
    process = start([*args, "trainer.max_steps=100000"], tmp_path)
    wait_for(lambda: len(csv_steps(run_dir)) >= 100 if (run_dir / "csv" / "metrics.csv").exists() else False, process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr[-3000:]
    assert "Traceback" not in stderr
    summary = read_summary(run_dir)
    stopped_at = summary["global_step"]
    assert summary["status"] == "interrupted" and stopped_at >= 100
    assert f"interrupted by {signal.Signals(signum).name} after step {stopped_at}" in summary["error"]
    # The periodic checkpoint would come at step 100000: this one was written on the way out, at the current step.
    assert checkpoint_step(run_dir) == stopped_at
    if signum == signal.SIGTERM:
        resumed = run_command([*args, f"trainer.max_steps={stopped_at + 20}"], cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"at step {stopped_at}" in resumed.stderr
        assert read_summary(run_dir)["global_step"] == stopped_at + 20
        assert csv_steps(run_dir) == list(range(1, stopped_at + 21))


def test_a_stop_signal_during_start_up_ends_the_command_with_its_exit_code_and_no_traceback(tmp_path, monkeypatch):
    # A real SIGTERM to this process while the command line is checked (the seconds of imports of a cold start).
    import gan_lightning.run

    def check_then_signal(argv):
        checked = check_command_line(argv)
        os.kill(os.getpid(), signal.SIGTERM)
        return checked

    monkeypatch.setattr(gan_lightning.run, "check_command_line", check_then_signal)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    run_dir = tmp_path / "run"
    result = command("run", [*TOY, "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    assert "stopped by SIGTERM before the run began: nothing was written" in result.stderr
    assert "Traceback" not in result.stderr and not run_dir.exists()
    assert {signum: signal.getsignal(signum) for signum in before} == before  # the handlers from before, back
    monkeypatch.undo()
    # Once the run began (its directory made), the signal ends it as interrupted, with its summary.
    process = start([*TOY, "logger=wandb", "trainer.max_steps=100000", f"hydra.run.dir={run_dir}"], tmp_path)
    wait_for(lambda: (run_dir / ".hydra" / "overrides.yaml").exists(), process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "Traceback" not in stderr and "received SIGTERM" in stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and summary["error"].startswith("interrupted by SIGTERM after step")
    assert summary["global_step"] == checkpoint_step(run_dir) <= 1  # at most the step W&B's start let it train


@pytest.mark.slow
@pytest.mark.parametrize("gap_s", [0.0, 0.05])
def test_two_ctrl_c_in_quick_succession_stop_at_once_without_a_traceback(tmp_path, gap_s):
    run_dir = tmp_path / "run"
    args = [*TOY, "logger=wandb", "trainer.log_every_n_steps=1", f"hydra.run.dir={run_dir}"]
    process = start([*args, "trainer.max_steps=100000"], tmp_path)
    wait_for(lambda: len(csv_steps(run_dir)) >= 100 if (run_dir / "csv" / "metrics.csv").exists() else False, process)
    process.send_signal(signal.SIGINT)
    time.sleep(gap_s)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr[-3000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and summary["error"].startswith("interrupted by SIGINT after step")
    # Whatever the second Ctrl-C cut short, the same command resumes from a loadable checkpoint.
    resumed = run_command([*args, f"trainer.max_steps={summary['global_step'] + 10}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_summary(run_dir)["status"] == "completed"


def test_every_refused_resume_leaves_every_file_of_the_run_byte_identical(tmp_path):
    run_dir = tmp_path / "run"
    args = [*LOGGED, "trainer.max_steps=60", f"hydra.run.dir={run_dir}"]
    assert run_command(args, cwd=tmp_path).returncode == 0
    before = file_hashes(run_dir)

    def refused(overrides: List[str], message: str) -> None:
        result = run_command([*args, "trainer.max_steps=120", *overrides], cwd=tmp_path)
        assert result.returncode == 2, result.stderr[-3000:]
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert file_hashes(run_dir) == before, overrides

    refused(["model.d_hidden=[32]"], "does not fit the configured model and data")
    refused(["optimizer=sgd"], "was trained with optimizer=adam, but this run asks for optimizer=sgd")
    refused(["objective=minimax"], "was trained with objective=nonsaturating, but this run asks for objective=minimax")
    refused(["data=grid25"], "was trained on data=ring8")
    refused(
        ["data.num_samples=5000"], "was trained on data.num_samples=100000, but this run asks for data.num_samples=5000"
    )
    refused(["resume=never"], "would be overwritten")
    refused(["data.batch_size=0"], "data.batch_size=0 is not allowed")
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # a damaged checkpoint
    before = file_hashes(run_dir)
    refused([], "is not a readable checkpoint")


def test_a_resume_on_another_subset_or_after_a_smoke_run_is_refused_and_leaves_the_run_as_it_was(tmp_path):
    run_dir, smoke_dir = tmp_path / "run", tmp_path / "smoke"
    images = ["data=fashion_mnist", "model=mlp", "logger=csv", "metrics=none", "callbacks.progress_every_n_steps=0",
              "data.batch_size=16", "trainer.max_steps=3"]  # fmt: skip
    assert run_command([*images, "data.subset=100", f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    before = file_hashes(run_dir)
    result = run_command([*images, "data.subset=200", "trainer.max_steps=6", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert (
        result.returncode == 2
        and "was trained on data.subset=100, but this run asks for data.subset=200" in result.stderr
    )
    assert file_hashes(run_dir) == before
    # A smoke run is not a start to continue from: the run that follows it in its folder is refused.
    assert run_command([*images, "debug=fast_dev_run", f"hydra.run.dir={smoke_dir}"], cwd=tmp_path).returncode == 0
    before = file_hashes(smoke_dir)
    result = run_command([*images, "trainer.max_steps=20", f"hydra.run.dir={smoke_dir}"], cwd=tmp_path)
    assert result.returncode == 2 and "is the checkpoint of a smoke run (debug=fast_dev_run)" in result.stderr
    assert file_hashes(smoke_dir) == before


def test_a_second_run_on_a_directory_in_use_is_refused_and_the_first_completes_untouched(tmp_path):
    run_dir = tmp_path / "run"
    # At least 5 s of training on any machine (10 ms a step): the second run, in this process, meets the first running.
    slow = "callbacks.extra=[{_target_: tests.helpers.faults.SlowSteps, seconds: 0.01}]"
    args = [*LOGGED, "trainer.max_steps=500", slow, f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.run", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: checkpoint_step(run_dir) > 0, first)
    second = run_command([*TOY, "trainer.max_steps=50", "seed=7", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert first.poll() is None  # refused while the first run was training
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"{run_dir} is in use by another run (process {first.pid} on " in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["global_step"] == 500
    assert "seed=7" not in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert checkpoint_step(run_dir) == 500
    assert csv_steps(run_dir) == list(range(10, 501, 10))
    assert not list(run_dir.glob("checkpoints/.*.tmp"))


@pytest.mark.slow
def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    args = [*LOGGED, "trainer.max_steps=2000", f"hydra.run.dir={run_dir}"]
    process = start(args, tmp_path)
    wait_for(lambda: checkpoint_step(run_dir) > 0, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((run_dir / ".lock").read_text())["pid"] == process.pid  # the killed run never released it
    resumed = run_command(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (
        f"taking over the lock of {run_dir} left by a run that is no longer running (process {process.pid} on "
        in resumed.stderr
    )
    assert read_summary(run_dir)["global_step"] == 2000
    assert (run_dir / ".lock").read_text() == ""  # released


def test_a_multirun_exits_non_zero_unless_every_job_completed(tmp_path):
    ok = run_command(
        ["-m", *TOY, "trainer.max_steps=20", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'ok'}"], cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert ok.stdout.strip().splitlines()[-1].endswith("2 jobs: 2 completed")
    # Job 1 names a checkpoint to resume from that is not there: a fault found when its run starts.
    missing = tmp_path / "missing.ckpt"
    mixed = run_command(
        ["-m", *TOY, "trainer.max_steps=20", f"resume=auto,{missing}", f"hydra.sweep.dir={tmp_path / 'mixed'}"],
        cwd=tmp_path,
    )
    assert mixed.returncode == 1
    assert mixed.stdout.strip().splitlines()[-1].endswith("2 jobs: 1 completed, 1 failed")
    assert read_summary(tmp_path / "mixed" / "0")["status"] == "completed"


def test_a_tracker_that_stops_answering_delays_the_end_of_a_run_by_its_limit_only(tmp_path):
    # W&B's own finish (and its exit handler) wait for its service without limit; the run waits logger.finish_timeout_s.
    run_dir = tmp_path / "run"
    freeze = "callbacks.extra=[{_target_: tests.helpers.faults.FreezeTracker, at_step: 50}]"
    args = [*LOGGED, "trainer.max_steps=60", "logger.finish_timeout_s=3", freeze, f"hydra.run.dir={run_dir}"]
    started = time.time()
    result = cli(args, cwd=tmp_path, env={"PYTHONPATH": str(REPO)}, timeout=120)
    elapsed = time.time() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert "within 3 s (logger.finish_timeout_s); it ends without waiting: what W&B wrote is in" in result.stderr
    assert "W&B's service did not shut down within 5 s; it was stopped" in result.stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["global_step"] == 60
    assert csv_steps(run_dir) == list(range(10, 61, 10))  # the CSV log is whole
    assert elapsed < 45, elapsed  # start-up, 60 steps, the 3 s limit and the service's 5 s: not W&B's endless wait


@pytest.mark.slow
def test_a_wandb_server_that_never_answers_costs_seconds_not_minutes(tmp_path):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)  # accepts connections and never answers them
    try:
        env = {
            "WANDB_MODE": "online",
            "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
            "WANDB_BASE_URL": f"http://127.0.0.1:{server.getsockname()[1]}",
        }
        started = time.time()
        result = cli([*TOY, "trainer.max_steps=20", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=env)
        elapsed = time.time() - started
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B's server does not answer" in result.stderr
    segments = wandb_segments(tmp_path / "run")
    assert len(segments) == 1 and segments[0].path.parent.name.startswith("offline-run-")
    assert logged_steps(segments) == [20]
    assert elapsed < 60, elapsed  # W&B's own start would wait 90 s, and its exit another minute


def test_a_run_resumed_behind_its_log_keeps_every_logged_step_once(tmp_path):
    # As after a kill: the CSV log holds steps the checkpoint does not (here rows up to step 30, a checkpoint of step
    # 20). The resumed run replaces those rows, so every step is in the log once, none lost and none twice.
    from tests.helpers.hydra import run_in_process

    args = [
        "data=ring8",
        "model=mlp",
        "logger=csv",
        "trainer.log_every_n_steps=1",
        "callbacks.keep_every_n_steps=20",
        "callbacks.progress_every_n_steps=0",
    ]
    run_in_process([*args, "trainer.max_steps=30"], tmp_path)
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "last.ckpt").write_bytes((checkpoints / "step_000020.ckpt").read_bytes())
    assert csv_steps(tmp_path) == list(range(1, 31))
    summary = run_in_process([*args, "trainer.max_steps=60"], tmp_path)
    assert summary["global_step"] == 60
    assert csv_steps(tmp_path) == list(range(1, 61))


def test_on_nan_skip_past_its_limit_ends_the_run_diverged(tmp_path, monkeypatch):
    from tests.helpers.hydra import run_in_process
    from tests.test_reliability import nan_d_losses

    nan_d_losses(monkeypatch, lambda call: call % 10 != 0)  # 9 of 10 D updates, 45 % of all updates, are dropped
    args = [*TOY, "objective=nonsaturating", "logger=none", "trainer.on_nan=skip", "trainer.max_steps=200"]
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(args, tmp_path / "strict")
    assert exit_info.value.code == 3
    summary = read_summary(tmp_path / "strict")
    assert summary["status"] == "diverged" and summary["global_step"] == 50  # the first check after 100 updates
    assert summary["error"] == (
        "training diverged at step 50: fraction of updates dropped by trainer.on_nan=skip (45 of 100; trainer.max_skipped_fraction=0.1) = 0.45"
    )
    lenient = run_in_process([*args, "trainer.max_skipped_fraction=0.5"], tmp_path / "lenient")
    assert lenient["status"] == "completed" and lenient["skipped_updates"] == 180

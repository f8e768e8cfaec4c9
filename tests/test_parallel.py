"""hydra/launcher=parallel: the jobs of a multirun side by side, each leaving what a job of the basic launcher leaves."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import List

import pytest
import torch
from omegaconf import OmegaConf

from gan_lightning.runs.jobs import LAUNCHER_TARGET, job_devices, job_threads
from gan_lightning.runs.summary import read_summary
from gan_lightning.sweeps.parallel import default_jobs
from gan_lightning.tracking.wandb_records import WandbRun
from tests.conftest import REPO, cli
from tests.helpers.commands import command
from tests.helpers.hydra import run_in_process

TOY = [
    "data=ring8",
    "model=mlp",
    "logger=wandb",
    "callbacks.samples_every_n_steps=0",
]  # each job a complete run, W&B included
PARALLEL = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]


def log_times(run_dir: Path) -> List[datetime]:
    """The timestamps of a job's run.log lines."""
    stamps = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]", (run_dir / "run.log").read_text(), flags=re.M)
    return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f") for stamp in stamps]


def wandb_run_ids(run_dir: Path) -> List[str]:
    return [WandbRun(folder).run["run_id"] for folder in sorted((run_dir / "wandb").glob("*run-*"))]


def test_parallel_jobs_run_side_by_side_and_each_leaves_a_complete_run(tmp_path):
    # Jobs 0 and 1 (seeds 0 and 1) train at the same time; jobs 2 and 3 (resuming from a checkpoint that is not
    # there, a fault found when their runs start) fail, and the sweep goes on without them.
    sweep = tmp_path / "sweep"
    overrides = [*TOY, "callbacks.progress_every_n_steps=50", "trainer.max_steps=300"]
    resume = f"resume=auto,{tmp_path / 'missing.ckpt'}"
    result = cli(["-m", *overrides, resume, "seed=0,1", *PARALLEL, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert f"sweep {sweep}: 4 jobs: 2 completed, 2 failed" in output and "Traceback" not in output
    statuses = {job: read_summary(sweep / job)["status"] for job in "0123"}
    assert statuses == {"0": "completed", "1": "completed", "2": "failed", "3": "failed"}
    for job in "01":
        summary = read_summary(sweep / job)
        assert summary["global_step"] == 300 and (sweep / job / "checkpoints" / "last.ckpt").is_file()
        assert len(wandb_run_ids(sweep / job)) == 1  # one W&B run per job, as with the basic launcher
    assert wandb_run_ids(sweep / "0") != wandb_run_ids(sweep / "1")
    # Side by side: each job logged progress while the other was training.
    first, second = log_times(sweep / "0"), log_times(sweep / "1")
    assert first[0] < second[-1] and second[0] < first[-1]
    # A parallel job trains what the same job trains on its own: the same weights, bit for bit.
    alone = tmp_path / "alone"
    run_in_process([*overrides, "model=mlp", "seed=1", "logger=none"], alone)
    parallel = torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    reference = torch.load(alone / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert parallel.keys() == reference.keys() and all(torch.equal(parallel[k], reference[k]) for k in parallel)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_ctrl_c_stops_every_job_with_a_checkpoint_and_the_same_command_resumes_them(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *TOY,
        "trainer.max_steps=600",
        "callbacks.progress_every_n_steps=100",
        "seed=0,1,2",
        *PARALLEL,
        f"hydra.sweep.dir={sweep}",
    ]
    process = subprocess.Popen([sys.executable, "-m", "gan_lightning.run", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip

    def training(job: str) -> bool:
        log = sweep / job / "run.log"
        return log.exists() and "step 100/600" in log.read_text()

    wait_for(lambda: training("0") and training("1"), 300, "jobs 0 and 1 to train")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every process of the sweep gets it
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 128 + signal.SIGINT, output[-3000:]
    assert "Traceback" not in output
    stopped = {job: read_summary(sweep / job) for job in "012"}
    assert {job: summary["status"] for job, summary in stopped.items()} == dict.fromkeys("012", "interrupted")
    for job in "01":  # stopped after a step, with a checkpoint at that step
        steps = stopped[job]["global_step"]
        assert 100 <= steps < 600 and f"checkpoint at step {steps} saved" in stopped[job]["error"]
        assert torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] > 0
    assert stopped["2"]["global_step"] == 0 and "before this job began to train" in stopped["2"]["error"]
    assert not (sweep / "2" / "checkpoints").exists()

    resumed = cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for job in "012":
        summary = read_summary(sweep / job)
        assert summary["status"] == "completed" and summary["global_step"] == 600
    for job in "01":
        assert (
            f"resuming from {sweep / job / 'checkpoints' / 'last.ckpt'} at step {stopped[job]['global_step']}"
            in (sweep / job / "run.log").read_text()
        )
        ids = wandb_run_ids(sweep / job)
        assert len(ids) == 2 and len(set(ids)) == 1  # the resumed job continues its own W&B run


@pytest.mark.slow
@pytest.mark.parametrize("after_s", [1.5, 4.0])  # as joblib imports its workers, and as they start jobs
def test_ctrl_c_while_the_workers_start_stops_the_sweep_cleanly_at_any_moment(tmp_path, after_s):
    # In its first seconds the sweep starts joblib's worker processes, which the signal may meet before a job runs.
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, "logger=csv", "trainer.max_steps=150", "seed=0,1", *PARALLEL, f"hydra.sweep.dir={sweep}"]
    process = subprocess.Popen([sys.executable, "-m", "gan_lightning.run", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    time.sleep(after_s)
    os.killpg(process.pid, signal.SIGINT)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 128 + signal.SIGINT, output[-3000:]
    assert "Traceback" not in output and "Error" not in output, output[-3000:]
    assert not (sweep / "STOPPING").exists()
    for summary_file in sweep.glob("*/summary.json"):  # whatever began was recorded whole, as interrupted
        assert read_summary(summary_file.parent)["status"] == "interrupted"
    assert not list(sweep.glob("*/checkpoints/.*.tmp"))
    resumed = cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [read_summary(sweep / job)["global_step"] for job in "01"] == [150, 150]


@pytest.mark.slow
def test_a_stop_signal_to_the_sweeps_process_alone_reaches_every_running_job(tmp_path):
    # As `kill PID` or a scheduler sends it: to the sweep's process only, not to its process group.
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, "logger=csv", "trainer.max_steps=100000", "callbacks.progress_every_n_steps=100",
            "callbacks.checkpoint_every_n_steps=100000", "seed=0,1", *PARALLEL, f"hydra.sweep.dir={sweep}"]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "gan_lightning.run", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip

    def training(job: str) -> bool:
        log = sweep / job / "run.log"
        return log.exists() and "step 100/100000" in log.read_text()

    try:
        wait_for(lambda: training("0") and training("1"), 300, "jobs 0 and 1 to train")
        os.kill(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=120)[0]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing left behind should the test fail
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert "Traceback" not in output
    for job in "01":
        summary = read_summary(sweep / job)
        steps = summary["global_step"]
        assert summary["status"] == "interrupted" and 100 <= steps < 100000, summary
        assert f"interrupted by SIGTERM after step {steps}; checkpoint at step {steps} saved" in summary["error"]
        checkpoint = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert checkpoint["gan_lightning"]["steps_done"] == steps


def parallel_job(number: int = 0, n_jobs: int = 2):
    return OmegaConf.create({"launcher": {"_target_": LAUNCHER_TARGET, "n_jobs": n_jobs}, "job": {"num": number}})


def test_threads_per_job_share_the_cores_unless_set():
    cores = len(os.sched_getaffinity(0))
    assert default_jobs(1) == cores and default_jobs(cores) == 1 and default_jobs(None) == cores
    assert job_threads(parallel_job(n_jobs=2), None) == max(1, cores // 2)
    assert job_threads(parallel_job(n_jobs=2 * cores), None) == 1
    assert job_threads(parallel_job(n_jobs=2), 3) == 3  # trainer.num_threads, as set
    basic = OmegaConf.create(
        {"launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, "job": {"num": 0}}
    )
    assert job_threads(basic, None) is None  # PyTorch's default, as without a launcher
    assert job_threads(None, None) is None


def test_each_job_takes_one_gpu_round_robin(monkeypatch):
    assert job_devices(parallel_job(5), "auto", 1) == 1  # no GPU here: the setting as it is
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)  # a machine with 4 GPUs
    assert [job_devices(parallel_job(number), "auto", 1) for number in range(6)] == [[0], [1], [2], [3], [0], [1]]
    assert job_devices(parallel_job(5), "gpu", 2) == 2  # a DDP job keeps its devices
    assert job_devices(parallel_job(5), "cpu", 1) == 1
    assert job_devices(None, "auto", 1) == 1


@pytest.mark.slow
def test_the_benchmark_times_every_launcher_on_the_same_sweep(tmp_path):
    import json

    out = tmp_path / "bench.json"
    result = command(
        "bench",
        ["cases=", "sweeps=true", "sweep_jobs=2", "sweep_steps=20", f"out={out}", f"workdir={tmp_path}"],
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = json.loads(out.read_text())["sweeps"]["mlp_ring8_small"]["2"]
    for launcher in ("basic", "parallel", "vectorized"):
        assert sweeps[launcher]["seed_steps_per_s"] == pytest.approx(2 * 20 / sweeps[launcher]["wall_s"])
        assert {read_summary(tmp_path / f"sweep_{launcher}" / job)["status"] for job in "01"} == {"completed"}
        assert sweeps[launcher]["wall_time_vs_basic"] == pytest.approx(
            sweeps[launcher]["wall_s"] / sweeps["basic"]["wall_s"]
        )
    assert (
        f"vectorized {sweeps['vectorized']['wall_s']:.1f} s" in result.stdout
        and "sweep of 2 seeds, mlp_ring8_small" in result.stdout
    )

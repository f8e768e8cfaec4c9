"""Sweeps on a real SLURM cluster (hydra/launcher=slurm): a single-node SLURM 22.05 cluster on this machine.

Started once for the session by ``scripts/slurm/local-cluster.sh`` (which needs root, and apt when SLURM is
not installed) and stopped at the end unless it was already running. Run with ``make test-slurm``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO, cli
from tests.helpers import probe
from tests.helpers.slurm import cluster_available, local_cluster, queued_jobs

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not cluster_available(), reason="needs SLURM installed, or root and apt-get to install it"),
]

TOY = ["hydra/launcher=slurm", "data=ring8", "model=mlp", "logger=csv", "callbacks.progress_every_n_steps=0"]


@pytest.fixture(scope="session")
def slurm_cluster():
    with local_cluster() as info:
        yield info


def test_sweep_runs_each_job_under_slurm(slurm_cluster, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli(
        ["-m", *TOY, "seed=0,1", "trainer.max_steps=100", f"hydra.sweep.dir={sweep}"], cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr
    summaries = [json.loads((sweep / job / "summary.json").read_text()) for job in ("0", "1")]
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    assert [s["global_step"] for s in summaries] == [100, 100]
    # Two tasks of one job array, neither requeued.
    ids = [s["slurm_job_id"] for s in summaries]
    assert all(re.fullmatch(r"\d+_[01]", i) for i in ids) and len({i.split("_")[0] for i in ids}) == 1
    assert sorted(i.split("_")[1] for i in ids) == ["0", "1"]
    assert [s["slurm_restarts"] for s in summaries] == [0, 0]
    assert f"sweep {sweep}: 2 jobs: 2 completed" in result.stdout + result.stderr


def test_data_parallel_job_runs_one_slurm_task_per_device(slurm_cluster, tmp_path):
    # trainer=ddp_cpu: 2 devices, so 2 SLURM tasks; Lightning takes the ranks from SLURM (no processes of its own).
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *TOY,
        "trainer=ddp_cpu",
        "trainer.max_steps=50",
        "callbacks.extra=[{_target_:tests.helpers.probe.RankProbe}]",
        f"hydra.sweep.dir={sweep}",
    ]
    result = cli(args, cwd=tmp_path, env={"PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == 50 and summary["slurm_job_id"]
    ranks = probe.load(sweep / "0")
    assert sorted(ranks) == [0, 1] and ranks[1]["world_size"] == 2
    assert all(torch.equal(ranks[0]["end"][name], ranks[1]["end"][name]) for name in ranks[0]["end"])
    assert not (sweep / "0" / "run_rank1.log").exists()  # SLURM started both processes, not Lightning


def test_preempted_job_is_requeued_and_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    sweep, steps = tmp_path / "sweep", 1500
    args = [
        "-m",
        *TOY,
        "seed=0",
        f"trainer.max_steps={steps}",
        "callbacks.checkpoint_every_n_steps=100",
        f"hydra.sweep.dir={sweep}",
    ]
    # The command waits for its jobs, so it runs in the background while the job is signalled.
    submitter = subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.run", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        checkpoint = sweep / "0" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert time.monotonic() < deadline and submitter.poll() is None, "no checkpoint was written"
            time.sleep(0.2)
        (job,) = queued_jobs()
        # What SLURM sends signal_delay_s before a time limit, and what a preempting scheduler sends.
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
        output, _ = submitter.communicate(timeout=300)
    finally:
        if submitter.poll() is None:
            submitter.kill()
            subprocess.run(["scancel", *queued_jobs()])
    assert submitter.returncode == 0, output
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == steps
    assert summary["slurm_job_id"] == job and summary["slurm_restarts"] == 1
    log = (sweep / "0" / "run.log").read_text()  # both attempts append to it
    assert "this job is preempted" in log and "Requeued job" in log
    (resumed_at,) = re.findall(rf"resuming from {re.escape(str(checkpoint))} at step (\d+)", log)
    # The signal made the job checkpoint the step it was at before submitit requeued it: nothing was lost.
    assert 0 < int(resumed_at) < steps
    assert f"interrupted by SIGUSR2 after step {resumed_at}; checkpoint at step {resumed_at} saved" in log
    assert f"sweep {sweep}: 1 jobs: 1 completed" in output


def test_vectorized_groups_run_as_one_array_task_each(slurm_cluster, tmp_path):
    # Two settings × two seeds: two groups, so two tasks of one job array, each training its two members.
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=vectorized", "hydra.launcher.groups=slurm", *TOY[1:], "seed=0,1", "objective=nonsaturating,hinge",
            "trainer.max_steps=100", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    result = cli(args, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    summaries = {job: json.loads((sweep / job / "summary.json").read_text()) for job in "0123"}
    assert {job: (s["status"], s["global_step"]) for job, s in summaries.items()} == dict.fromkeys(
        "0123", ("completed", 100)
    )
    ids = {job: s["slurm_job_id"] for job, s in summaries.items()}
    # Jobs 0 and 2 (seeds 0 and 1 of the first setting) are one group, 1 and 3 the other.
    assert ids["0"] == ids["2"] and ids["1"] == ids["3"] and ids["0"] != ids["1"]
    assert all(re.fullmatch(r"\d+_[01]", i) for i in ids.values()) and len({i.split("_")[0] for i in ids.values()}) == 1
    assert f"sweep {sweep}: 4 jobs: 4 completed" in result.stdout + result.stderr


def test_a_search_prunes_a_hopeless_trial_run_as_a_slurm_job(slurm_cluster, tmp_path):
    # The random sampler's seed 6 draws G's learning rate 1e-3, 1e-3, then 1e-9 (nothing trains): trials 0 and 1 are
    # SLURM jobs side by side; trial 2 starts when one of them ends, and the median pruner stops it at step 100, where
    # the trained runs have reached modes (reverse_kl below log 8) and it has not.
    sweep = tmp_path / "sweep"
    args = ["-m", *TOY, "hydra/sweeper=search", "metrics=toy2d", "metrics.every_n_steps=50", "optimized_metric=reverse_kl",
            "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=6", "hydra.sweeper.n_trials=3",
            "hydra.sweeper.n_jobs=2", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
            "trainer.max_steps=300", "optimizer.g.lr=choice(0.001,1e-9)", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    result = cli(args, cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads((sweep / job / "summary.json").read_text()) for job in ("0", "1", "2")]
    assert [s["status"] for s in summaries] == ["completed", "completed", "pruned"]
    assert [s["global_step"] for s in summaries] == [300, 300, 100]
    assert all(s["slurm_job_id"] for s in summaries) and len({s["slurm_job_id"] for s in summaries}) == 3
    import optuna

    study = optuna.load_study(study_name="search", storage=f"sqlite:///{sweep / 'study.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert sorted(study.trials[2].intermediate_values) == [50, 100]
    from gan_lightning.checkpoints.resume import select_resume

    assert select_resume("auto", sweep / "2").steps_done == 100

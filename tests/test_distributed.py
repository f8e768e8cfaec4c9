"""Data-parallel training with ``trainer=ddp_cpu``: two CPU processes (gloo), through the real command line.

Each process runs ``tests.helpers.probe.RankProbe`` (added with ``callbacks.extra``), which records the
data and latents that process drew and the weights it ended with.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.config import to_config, validate
from gan_lightning.errors import UserError
from gan_lightning.runs.summary import read_summary
from tests.conftest import REPO, cli
from tests.helpers import probe
from tests.helpers.hydra import compose_config

TOY = [
    "data=ring8",
    "model=mlp",
    "logger=csv",
    "callbacks.progress_every_n_steps=0",
    "callbacks.samples_every_n_steps=0",
]
PROBE = "callbacks.extra=[{_target_:tests.helpers.probe.RankProbe}]"
ENV = {"PYTHONPATH": str(REPO)}  # the probe's module, in every process of the job
STEPS = 60
EVALUATED = 1200  # samples per evaluation: 3 batches of 500


def ddp(args, cwd: Path):
    return cli(["trainer=ddp_cpu", *args], cwd=cwd, env=ENV)


def toy_args(run_dir: Path, max_steps: int):
    # Deterministic, so an interrupted and resumed run can be compared with an uninterrupted one exactly.
    return [
        *TOY,
        PROBE,
        f"trainer.max_steps={max_steps}",
        "callbacks.checkpoint_every_n_steps=30",
        "trainer.deterministic=true",
        "trainer.log_every_n_steps=10",
        "metrics=toy2d",
        f"metrics.num_samples={EVALUATED}",
        f"hydra.run.dir={run_dir}",
    ]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("ddp")
    result = ddp(toy_args(cwd / "run", STEPS), cwd)
    assert result.returncode == 0, result.stderr
    return cwd, cwd / "run", result


def state_dict(run_dir: Path):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_ranks_train_on_different_data_and_latents_and_end_with_identical_weights(toy_run):
    _, run_dir, _ = toy_run
    ranks = probe.load(run_dir)
    assert sorted(ranks) == [0, 1] and {r["world_size"] for r in ranks.values()} == {2}
    assert ranks[0]["steps_done"] == ranks[1]["steps_done"] == STEPS
    # Gradients were averaged in every update: every parameter of G and D is bit-identical on both ranks
    # (and equal to rank 0's checkpoint), and training changed them.
    first, second = ranks[0]["end"], ranks[1]["end"]
    assert any("generator." in n for n in first) and any("discriminator." in n for n in first)
    assert all(torch.equal(first[name], second[name]) for name in first)
    saved = state_dict(run_dir)
    assert all(torch.equal(first[name], saved[name]) for name in first)
    assert all(not torch.equal(ranks[0]["start"][name], first[name]) for name in first if name.endswith("weight"))
    # Each rank took its own share of the data (no point in common) and drew its own latents.
    for batch0, batch1 in zip(ranks[0]["batches"], ranks[1]["batches"]):
        assert batch0.shape == batch1.shape == (100, 2)
        assert torch.cdist(batch0, batch1).min() > 0
    assert not torch.allclose(ranks[0]["first_latents"], ranks[1]["first_latents"])


def test_rank_zero_alone_writes_the_run_directory(toy_run):
    cwd, run_dir, result = toy_run
    # One run directory, where the command said; the second process wrote only its log there.
    assert [p.name for p in cwd.iterdir()] == ["run"]
    assert list(cwd.rglob(".hydra")) == [run_dir / ".hydra"]
    assert list(cwd.rglob("summary.json")) == [run_dir / "summary.json"]
    assert (run_dir / "run.log").exists() and (run_dir / "run_rank1.log").exists()
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["last.png", f"step_{STEPS:06d}.png"]
    # summary.json holds rank 0's view (each rank logs the losses of its own data).
    ranks = probe.load(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == STEPS
    assert summary["metrics"]["loss/d"] == pytest.approx(ranks[0]["metrics"]["loss/d"])
    assert ranks[0]["metrics"]["loss/d"] != ranks[1]["metrics"]["loss/d"]
    assert "slurm_job_id" not in summary
    assert summary["machine"]["processes"] == 2  # the wall time was spent by two processes
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("loss/d")]
    assert len(rows) == STEPS // 10
    assert all(math.isfinite(float(row[key])) for row in rows for key in ("loss/d", "loss/g", "d/real", "d/fake"))
    assert result.stderr.count("run directory:") == 1


def test_each_process_generates_its_share_of_an_evaluation_and_the_scores_equal_one_processs(toy_run):
    _, run_dir, _ = toy_run
    ranks = probe.load(run_dir)
    # Batches 1 and 3 on rank 0, batch 2 on rank 1; rank 0 gathers and scores them.
    assert [ranks[rank]["evaluation_shares"] for rank in (0, 1)] == [[2], [1]]
    summary = read_summary(run_dir)
    evaluated = subprocess.run([sys.executable, "-m", "gan_lightning.evaluate", f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}", f"metrics.num_samples={EVALUATED}"],
                               capture_output=True, text=True, cwd=run_dir, timeout=600)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    alone = json.loads(evaluated.stdout)
    assert alone["step"] == STEPS and alone["protocol"] == summary["metrics_protocol"]
    assert alone["metrics"] == {
        name: summary["metrics"][name] for name in ("modes", "hq_fraction", "reverse_kl", "balanced_hq_fraction")
    }


@pytest.mark.slow
def test_resume_restores_each_ranks_random_stream(toy_run, tmp_path):
    _, uninterrupted, _ = toy_run
    run_dir = tmp_path / "run"
    assert ddp(toy_args(run_dir, 30), tmp_path).returncode == 0
    result = ddp(toy_args(run_dir, STEPS), tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'} at step 30" in result.stderr
    # Each rank continues its own latent stream: the weights equal those of the uninterrupted run exactly.
    resumed, expected = state_dict(run_dir), state_dict(uninterrupted)
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[name], expected[name]) for name in expected)
    ranks = probe.load(run_dir)
    assert not torch.allclose(ranks[0]["first_latents"], ranks[1]["first_latents"])


def test_a_loss_that_diverges_on_one_process_stops_every_process(tmp_path):
    # Rank 1's D loss of step 5 is NaN. Every process reads its losses back at the same checks (the checkpoint at
    # step 6) and all stop at the earliest divergence among them; the checkpoint of step 4 stays the last one.
    poison = "callbacks.extra=[{_target_: tests.helpers.faults.PoisonDiscriminator, at_step: 5, rank: 1}]"
    args = [
        *TOY,
        poison,
        "trainer.max_steps=20",
        "trainer.log_every_n_steps=10",
        "callbacks.checkpoint_every_n_steps=2",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = ddp(args, tmp_path)
    assert result.returncode == 3, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["global_step"] == 6
    assert summary["error"] == "training diverged at step 5: loss/d of another process = nan"
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["gan_lightning"]["steps_done"] == 4 and all(
        torch.isfinite(v).all() for v in last["state_dict"].values()
    )


@pytest.mark.slow
@pytest.mark.parametrize("stats", ["separate", "joint"])
def test_dcgan_with_batch_norm_in_both_networks(tmp_path, stats):
    # separate: two forward passes through D's DDP wrapper before its backward pass; joint: one over both
    # batches. G's update scores through D outside its DDP wrapper.
    # Logged to W&B (offline): one run, rank 0's (Lightning gives the other ranks a dummy experiment).
    args = ["data=fashion_mnist", "data.limit=512", "model=dcgan", f"model.d_batch_stats={stats}", "logger=wandb", "trainer.max_steps=6", PROBE,
            f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    result = ddp(args, tmp_path)
    assert result.returncode == 0, result.stderr
    ranks = probe.load(tmp_path / "run")
    assert all(torch.equal(ranks[0]["end"][name], ranks[1]["end"][name]) for name in ranks[0]["end"])
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["global_step"] == 6
    assert len(list(tmp_path.rglob("offline-run-*"))) == 1


@pytest.mark.slow
def test_ada_moves_p_alike_on_every_process_from_the_reals_of_all(tmp_path):
    # Each process augments its own share; r_t is summed over both, so p moves by 64 images × 2 processes × 4 steps /
    # 2 000 = 0.256 per adjustment on each (a process counting its own images alone would move it by 0.128): before
    # steps 5 and 9.
    args = ["data=fashion_mnist", "data.limit=512", "model=dcgan", "augment=ada", "augment.speed_images=2000",
            "augment.target=0.01", "trainer.max_steps=9", PROBE, f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    result = ddp(args, tmp_path)
    assert result.returncode == 0, result.stderr
    ranks = probe.load(tmp_path / "run")
    assert ranks[0]["metrics"]["augment/p"] == ranks[1]["metrics"]["augment/p"] == pytest.approx(0.512)
    assert all(torch.equal(ranks[0]["end"][name], ranks[1]["end"][name]) for name in ranks[0]["end"])


def test_simultaneous_updates_synchronise_both_networks(tmp_path):
    # One forward pass through both DDP wrappers, then a backward pass for each network's parameters.
    args = [
        *TOY,
        PROBE,
        "trainer.updates=simultaneous",
        "objective=wgan_gp",
        "trainer.max_steps=20",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = ddp(args, tmp_path)
    assert result.returncode == 0, result.stderr
    ranks = probe.load(tmp_path / "run")
    first, second = ranks[0]["end"], ranks[1]["end"]
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert all(not torch.equal(ranks[0]["start"][name], first[name]) for name in first if name.endswith("weight"))


def test_each_job_of_a_multirun_starts_its_own_processes_in_its_own_directory(tmp_path):
    sweep = tmp_path / "sweep"
    result = cli(
        ["-m", "trainer=ddp_cpu", "seed=0,1", *TOY, "trainer.max_steps=20", f"hydra.sweep.dir={sweep}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["sweep"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["global_step"] == 20
        assert (sweep / job / "run_rank1.log").exists()
    assert f"sweep {sweep}: 2 jobs: 2 completed" in result.stdout + result.stderr
    assert "Initializing distributed" not in result.stdout + result.stderr  # a run prints its own lines only


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["trainer.strategy=ddp"], "trainer.strategy='ddp' is not allowed: auto (one device), gan_ddp"),
        (["trainer.devices=2"], "trainer.strategy='auto' is not allowed: gan_ddp for trainer.devices=2"),
        (
            ["trainer=ddp_cpu", "trainer.sync_batchnorm=true"],
            "trainer.sync_batchnorm=True is not allowed: false with trainer.accelerator=cpu",
        ),
    ],
)
def test_settings_that_cannot_train_in_parallel_are_refused(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(to_config(compose_config(["data=ring8", "model=mlp", *overrides])))


@pytest.mark.slow
def test_sigterm_stops_both_processes_at_one_step_with_a_checkpoint_that_resumes(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "trainer=ddp_cpu",
        *TOY,
        "trainer.log_every_n_steps=1",
        "callbacks.checkpoint_every_n_steps=100000",
        f"hydra.run.dir={run_dir}",
    ]
    parent = subprocess.Popen(
        [sys.executable, "-m", "gan_lightning.run", *args, "trainer.max_steps=100000"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    metrics = run_dir / "csv" / "metrics.csv"
    deadline = time.time() + 300
    while not metrics.exists():  # written after 100 logged steps
        assert parent.poll() is None and time.time() < deadline, parent.communicate()[1][-3000:]
        time.sleep(0.05)
    parent.send_signal(signal.SIGTERM)  # to rank 0 only: rank 1 learns of it from the agreement between processes
    _, stderr = parent.communicate(timeout=300)
    assert parent.returncode == 143, stderr[-3000:]
    summary = read_summary(run_dir)
    stopped_at = summary["global_step"]
    assert summary["status"] == "interrupted" and stopped_at % 10 == 0  # the processes agree every 10 steps
    checkpoint = load_safely(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]
    assert checkpoint["steps_done"] == stopped_at and len(checkpoint["rank_cpu_rng_states"]) == 2
    resumed = ddp([*args, f"trainer.max_steps={stopped_at + 20}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_summary(run_dir)["global_step"] == stopped_at + 20

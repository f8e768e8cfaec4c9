"""Runs survive kills, divergence and bad input: resume, atomic checkpoints, clear refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.runs.summary import read_summary
from tests.conftest import REPO
from tests.helpers.commands import run_command
from tests.helpers.hydra import run_in_process

QUIET = ["callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]
TOY = ["data=ring8", "model=mlp", "logger=none", *QUIET]


def weights(run_dir: Path):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_killed_run_resumes_and_ends_exactly_like_an_uninterrupted_one(tmp_path):
    args = [*TOY, "trainer.deterministic=true", "trainer.max_steps=1500", "callbacks.checkpoint_every_n_steps=100"]
    run_in_process(args, tmp_path / "straight")

    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "gan_lightning.run", *args, f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_safely(checkpoint)["gan_lightning"]["steps_done"]
    assert 100 <= killed_at < 1500

    resumed = run_command([*args, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {checkpoint} at step {killed_at}" in resumed.stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["global_step"] == 1500
    straight, after_resume = weights(tmp_path / "straight"), weights(run_dir)
    assert straight.keys() == after_resume.keys()
    assert all(torch.equal(straight[k], after_resume[k]) for k in straight)


def test_a_completed_run_is_not_trained_again(tmp_path):
    args = [*TOY, "trainer.max_steps=30"]
    first = run_in_process(args, tmp_path)
    before = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    again = run_in_process(args, tmp_path)
    assert again["status"] == "completed" and again["global_step"] == 30
    assert again["metrics"] == first["metrics"]
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == before


def test_raising_max_steps_continues_a_finished_run(tmp_path):
    first = run_in_process([*TOY, "trainer.max_steps=30"], tmp_path)
    summary = run_in_process([*TOY, "trainer.max_steps=60"], tmp_path)
    assert summary["global_step"] == 60
    # Its wall time counts both segments; a run started elsewhere from this checkpoint counts only its own.
    assert summary["wall_time_s"] == pytest.approx(first["wall_time_s"] + summary["segment_wall_time_s"], abs=2e-3)
    assert 0 < summary["segment_wall_time_s"] and "segment_wall_time_s" not in first
    assert summary["started_at"] == first["started_at"] and summary["ended_at"] >= first["ended_at"]  # the first start
    other = run_in_process(
        [*TOY, "trainer.max_steps=90", f"resume={tmp_path / 'checkpoints' / 'last.ckpt'}"], tmp_path / "other"
    )
    assert other["global_step"] == 90 and "segment_wall_time_s" not in other


WRITER = textwrap.dedent(
    """
    import io, sys, time, torch
    import gan_lightning.checkpoints.resume as checkpoints
    path = sys.argv[1]
    writer = checkpoints.AtomicCheckpointIO()
    writer.save_checkpoint({"gan_lightning": {"steps_done": 1}, "w": torch.ones(1000)}, path)
    real_save = torch.save

    def save_half_then_hang(obj, f):  # the process is killed in the middle of writing
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        print("half written", flush=True)
        time.sleep(600)

    checkpoints.torch.save = save_half_then_hang
    writer.save_checkpoint({"gan_lightning": {"steps_done": 2}, "w": torch.zeros(1000)}, path)
    """
)


def test_a_kill_during_a_checkpoint_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "half written"
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint = load_safely(path)
    assert checkpoint["gan_lightning"]["steps_done"] == 1 and torch.equal(checkpoint["w"], torch.ones(1000))


def test_divergence_stops_with_status_exit_code_and_a_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [
        *TOY,
        "optimizer=sgd",
        "optimizer.d.lr=1e10",
        "optimizer.g.lr=1e10",
        "trainer.max_steps=50",
        "callbacks.checkpoint_every_n_steps=1",
    ]
    result = run_command([*args, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    summary = read_summary(run_dir)
    assert summary["status"] == "diverged"
    assert "training diverged at step 2: loss/g = nan" in result.stderr and summary["error"].startswith(
        "training diverged at step 2"
    )
    checkpoint = load_safely(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["gan_lightning"]["steps_done"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    # lr 1e30 turns the weights infinite in the first step: no checkpoint may be written at all.
    args = [
        *TOY,
        "optimizer=sgd",
        "optimizer.d.lr=1e30",
        "optimizer.g.lr=1e30",
        "trainer.max_steps=5",
        "callbacks.checkpoint_every_n_steps=1",
    ]
    result = run_command([*args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 3 and "no checkpoint had been written yet" in result.stderr
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def nan_d_losses(monkeypatch, poisoned):
    """D's loss (Minimax and the objectives built on it) is NaN at the calls (1, 2, ...) ``poisoned`` picks."""
    from gan_lightning.training.objectives import Minimax

    calls = {"n": 0}
    real_d_loss = Minimax.d_loss

    def d_loss(self, real_out, fake_out):
        calls["n"] += 1
        loss = real_d_loss(self, real_out, fake_out)
        return loss * float("nan") if poisoned(calls["n"]) else loss

    monkeypatch.setattr(Minimax, "d_loss", d_loss)


def test_a_divergence_found_at_a_later_check_names_its_own_step(tmp_path, monkeypatch):
    # Losses are read back at checks (here the checkpoint at step 4), not after every update; the report still
    # names the update that diverged, and the checkpoint of step 2 stays the last one.
    nan_d_losses(monkeypatch, lambda call: call == 3)
    args = [
        *TOY,
        "objective=nonsaturating",
        "trainer.max_steps=20",
        "trainer.log_every_n_steps=10",
        "callbacks.checkpoint_every_n_steps=2",
    ]
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(args, tmp_path)
    assert exit_info.value.code == 3
    summary = read_summary(tmp_path)
    assert summary["status"] == "diverged" and summary["error"] == "training diverged at step 3: loss/d = nan"
    assert summary["global_step"] == 4
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["gan_lightning"]["steps_done"] == 2
    assert all(torch.isfinite(v).all() for v in weights(tmp_path).values())


def test_on_nan_skip_drops_non_finite_updates_and_counts_them(tmp_path, monkeypatch):
    nan_d_losses(monkeypatch, lambda call: call % 10 == 0)
    summary = run_in_process(
        [*TOY, "objective=nonsaturating", "trainer.on_nan=skip", "trainer.max_steps=100"], tmp_path
    )
    assert summary["status"] == "completed" and summary["global_step"] == 100
    assert summary["skipped_updates"] == 10
    assert all(torch.isfinite(v).all() for v in weights(tmp_path).values())


def test_a_failing_job_of_three_leaves_the_other_two_completed(tmp_path):
    sweep = tmp_path / "sweep"
    # Job 1 resumes from a checkpoint that is not there: a fault found when its run starts, as its settings look right.
    missing = tmp_path / "missing.ckpt"
    result = run_command(
        ["-m", *TOY, f"resume=auto,{missing},auto", "optimizer.d.lr=0.0002", "trainer.max_steps=30",
         f"hydra.sweep.dir={sweep}"], cwd=tmp_path
    )  # fmt: skip
    statuses = {p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/summary.json")}
    assert statuses == {"0": "completed", "1": "failed", "2": "completed"}
    assert f"sweep {sweep}: 3 jobs: 2 completed, 1 failed" in result.stdout + result.stderr


def run_expecting_user_error(overrides, run_dir, capsys, caplog):
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(overrides, run_dir)
    assert exit_info.value.code == 2
    output = capsys.readouterr()
    logged = caplog.text + output.out + output.err
    assert "Traceback" not in logged
    return logged


VALIDATION_RULES = {
    "learning rate": (["optimizer.g.lr=0"], "optimizer.g.lr=0.0 is not allowed: a positive learning rate."),
    "batch size": (["data.batch_size=0"], "data.batch_size=0 is not allowed: a positive number of samples per batch."),
    "d_steps": (["trainer.d_steps=0"], "trainer.d_steps=0 is not allowed: at least 1 discriminator update per step."),
    "g_steps": (["trainer.g_steps=-1"], "trainer.g_steps=-1 is not allowed: at least 1 generator update per step."),
    "updates": (
        ["trainer.updates=together"],
        "trainer.updates='together' is not allowed: one of alternating, simultaneous.",
    ),
    "profiler": (
        ["trainer.profiler=pytorch"],
        "trainer.profiler='pytorch' is not allowed: null (none), simple or advanced.",
    ),
    "simultaneous g_steps": (
        ["trainer.updates=simultaneous", "trainer.g_steps=2"],
        "trainer.g_steps=2 is not allowed: 1 with trainer.updates=simultaneous",
    ),
    "model/data shapes": (
        ["model=dcgan"],
        "model=dcgan needs image data (channels × height × width), but the data's samples have shape (2,)",
    ),
    "image size": (
        ["data=image_folder", "data.path={tmp_path}", "data.image_size=48", "model=resnet"],
        "model=resnet supports square images of side 16, 32, 64, 128, ... (4·2^k), but the data's samples have shape (3, 48, 48)",
    ),
    "missing checkpoint": (
        ["resume=/nonexistent/last.ckpt"],
        "resume='/nonexistent/last.ckpt': no such checkpoint file; allowed: auto, never, or the path of a checkpoint.",
    ),
}
if not torch.cuda.is_available():  # settings that cannot work on a machine without a GPU
    VALIDATION_RULES["gpu without one"] = (
        ["trainer.accelerator=gpu"],
        "trainer.accelerator='gpu' is not allowed: auto or cpu: this machine has no CUDA GPU",
    )
    VALIDATION_RULES["float16 on the CPU"] = (
        ["trainer.precision=16-mixed"],
        "trainer.precision='16-mixed' is not allowed: 32-true or bf16-mixed on the CPU",
    )


@pytest.mark.parametrize("rule", sorted(VALIDATION_RULES))
def test_validation_rule_gives_its_message_before_anything_is_written(tmp_path, capsys, caplog, rule):
    overrides, message = VALIDATION_RULES[rule]
    overrides = [override.format(tmp_path=tmp_path) for override in overrides]  # a folder nothing else writes to
    run_dir = tmp_path / "run"
    logged = run_expecting_user_error([*TOY, *overrides], run_dir, capsys, caplog)
    assert message in logged
    if rule == "missing checkpoint":  # found once the run took its directory: the summary says why it did not train
        assert sorted(p.name for p in run_dir.iterdir() if p.name != ".lock") == ["summary.json"]
    else:  # settings refused before the run took its directory: nothing written, not even the folder
        assert not run_dir.exists()


def test_a_file_that_is_not_a_checkpoint_of_this_project_is_refused(tmp_path, capsys, caplog):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, foreign)
    logged = run_expecting_user_error([*TOY, f"resume={foreign}"], tmp_path / "run", capsys, caplog)
    assert f"{foreign} is not a checkpoint of gan_lightning" in logged


def test_a_checkpoint_of_another_model_is_refused(tmp_path, capsys, caplog):
    run_in_process([*TOY, "trainer.max_steps=2"], tmp_path / "small")
    logged = run_expecting_user_error(
        [*TOY, "model.d_hidden=[32]", f"resume={tmp_path / 'small' / 'checkpoints' / 'last.ckpt'}"],
        tmp_path / "run",
        capsys,
        caplog,
    )
    assert "does not fit the configured model and data" in logged


def test_resume_never_refuses_to_overwrite_a_run(tmp_path, capsys, caplog):
    run_in_process([*TOY, "trainer.max_steps=2"], tmp_path)
    before = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    logged = run_expecting_user_error([*TOY, "trainer.max_steps=2", "resume=never"], tmp_path, capsys, caplog)
    assert "would be overwritten" in logged
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == before


class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/gan_lightning_pickle_ran")


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys, caplog):
    MARKER.unlink(missing_ok=True)
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"gan_lightning": {"steps_done": 1}, "state_dict": {}, "payload": RunsCode()}, crafted)
    logged = run_expecting_user_error([*TOY, f"resume={crafted}"], tmp_path / "run", capsys, caplog)
    assert "not loaded (loading it could run code)" in logged
    assert not MARKER.exists()


def test_secrets_in_the_environment_never_reach_run_files(tmp_path, monkeypatch):
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    run_in_process(["data=ring8", "model=mlp", "logger=wandb", "trainer.max_steps=20", *QUIET], tmp_path)
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "kind, sweep",
    [
        ("a single run", []),
        ("a job of a multirun", ["-m", "seed=0"]),
        ("a vectorized group", ["-m", "hydra/launcher=vectorized", "seed=0,1"]),
    ],  # fmt: skip
)
def test_a_stop_signal_during_start_up_ends_every_kind_of_job_alike(tmp_path, monkeypatch, kind, sweep):
    # A real SIGTERM while the job finds its data (start-up, before the first step): one lifecycle for every kind of
    # job (gan_lightning.runs.lifecycle.running_job) ends it as interrupted with 128 + 15, nothing trained.
    from gan_lightning.data.toy import GaussianMixture2D

    monkeypatch.setattr(GaussianMixture2D, "prepare", lambda self: os.kill(os.getpid(), signal.SIGTERM))
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    where = tmp_path / "out"
    args = [*TOY, "trainer.max_steps=50", *sweep, f"hydra.{'sweep' if sweep else 'run'}.dir={where}"]
    result = run_command(args, cwd=tmp_path)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "received SIGTERM: stopping before training starts" in result.stderr
    runs = [where] if not sweep else sorted(p for p in where.iterdir() if p.is_dir())
    assert len(runs) == (2 if kind == "a vectorized group" else 1)
    for run in runs:
        summary = read_summary(run)
        assert summary["status"] == "interrupted" and summary["global_step"] == 0, kind
        assert summary["error"].startswith("interrupted by SIGTERM after step 0; no checkpoint could be saved"), kind
        assert not (run / "checkpoints" / "last.ckpt").exists()
    assert {signum: signal.getsignal(signum) for signum in before} == before  # the handlers from before, back

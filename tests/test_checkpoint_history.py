"""The checkpoint history: step_<N>.ckpt every N steps (the latest keep_limit) and best.ckpt at a metric's best value."""

from __future__ import annotations

import csv
import signal
from pathlib import Path
from typing import Dict

import pytest

from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.checkpoints.saving import History, PeriodicCheckpoint
from gan_lightning.config import to_config, validate
from gan_lightning.errors import UserError
from gan_lightning.runs.summary import read_summary
from tests.helpers.commands import run_command
from tests.helpers.hydra import compose_config
from tests.test_history import checkpoint_step, start, wait_for

KEPT = ["data=ring8", "model=mlp", "metrics=toy2d", "metrics.every_n_steps=50", "metrics.num_samples=1000", "logger=csv",
        "callbacks.checkpoint_every_n_steps=50", "callbacks.keep_every_n_steps=50", "callbacks.keep_limit=3",
        "callbacks.keep_best=hq_fraction", "callbacks.samples_every_n_steps=0", "callbacks.progress_every_n_steps=50"]  # fmt: skip


def evaluations(run_dir: Path, metric: str) -> Dict[int, float]:
    """Each evaluation's value by training step (the CSV log files a step's values under its number)."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return {
            int(float(row["step"])): float(row[f"metrics/{metric}"])
            for row in csv.DictReader(f)
            if row.get(f"metrics/{metric}")
        }


@pytest.mark.slow
def test_a_killed_and_resumed_run_keeps_its_latest_steps_and_its_best_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [*KEPT, "trainer.max_steps=300", f"hydra.run.dir={run_dir}"]
    process = start(args, tmp_path)
    wait_for(lambda: checkpoint_step(run_dir) >= 100, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT
    interrupted_at = read_summary(run_dir)["global_step"]
    assert 100 <= interrupted_at < 300

    resumed = run_command(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    checkpoints = run_dir / "checkpoints"
    # Every 50 steps, the latest 3 kept; the interrupted step's own checkpoint is not in the history.
    assert sorted(p.name for p in checkpoints.glob("step_*.ckpt")) == [
        "step_000200.ckpt",
        "step_000250.ckpt",
        "step_000300.ckpt",
    ]
    for path in checkpoints.glob("step_*.ckpt"):
        assert load_safely(path)["gan_lightning"]["steps_done"] == int(path.stem.split("_")[1])
    # best.ckpt holds the step of the highest high-quality fraction of all six evaluations, before and after the
    # resume (the first of equal values), and summary.json says which.
    values = evaluations(run_dir, "hq_fraction")
    assert sorted(values) == [50, 100, 150, 200, 250, 300]
    best_step = min(values, key=lambda step: (-values[step], step))
    summary = read_summary(run_dir)
    assert summary["best"] == {"metric": "hq_fraction", "value": pytest.approx(values[best_step], abs=1e-6), "step": best_step,
                               "checkpoint": str(checkpoints / "best.ckpt")}  # fmt: skip
    assert load_safely(checkpoints / "best.ckpt")["gan_lightning"]["steps_done"] == best_step


def test_better_means_lower_or_higher_as_the_metric_says():
    for metric, values, best in [
        ("fid", [30.0, 20.0, 25.0, 20.0], (20.0, 1)),
        ("modes", [5.0, 8.0, 8.0, 7.0], (8.0, 1)),
    ]:
        callback = PeriodicCheckpoint(Path("unused"), 0, History(best_metric=metric))
        for step, value in enumerate(values):
            if callback.improves(value):
                callback.best = {"value": value, "step": step}
        assert (callback.best["value"], callback.best["step"]) == best  # the first of equal values stays the best


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["metrics=toy2d", "callbacks.keep_best=fid"],
            "callbacks.keep_best='fid' is not allowed: a metric that metrics=toy2d measures (modes, hq_fraction, reverse_kl, balanced_hq_fraction), or null.",
        ),
        (
            ["metrics=none", "callbacks.keep_best=fid"],
            "callbacks.keep_best='fid' is not allowed: a metric that metrics=none measures (none), or null.",
        ),
        (
            ["callbacks.keep_limit=0"],
            "callbacks.keep_limit=0 is not allowed: a positive number of checkpoints, or null to keep all.",
        ),
        (
            ["callbacks.keep_every_n_steps=-5"],
            "callbacks.keep_every_n_steps=-5 is not allowed: a number of steps, or 0 to turn it off.",
        ),
    ],
)
def test_history_settings_are_checked_before_the_run(overrides, message):
    with pytest.raises(UserError) as error:
        validate(to_config(compose_config(["data=ring8", "model=mlp", *overrides])))
    assert str(error.value) == message

"""End-to-end runs through gan_lightning.run: the files a run leaves and what summary.json says."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.config import to_config
from gan_lightning.runs.build import build_module
from gan_lightning.tracking.wandb_records import WandbRun
from tests.helpers.hydra import compose_config, run_in_process

FAST = ["callbacks.progress_every_n_steps=0"]


def test_ring8_run_writes_summary_samples_checkpoint_and_csv(run_dir):
    summary = run_in_process(
        [
            "data=ring8",
            "model=mlp",
            "trainer.max_steps=300",
            "logger=csv",
            "callbacks.samples_every_n_steps=100",
            "callbacks.checkpoint_every_n_steps=100",
            *FAST,
        ],
        run_dir,
    )
    assert summary["status"] == "completed"
    assert summary["global_step"] == 300
    assert {"loss/d", "loss/g", "d/real", "d/fake"} <= set(summary["metrics"])
    assert summary["overrides"][:3] == ["data=ring8", "model=mlp", "trainer.max_steps=300"]
    assert 0 < summary["wall_time_s"] < 120
    # What the run is, when it ran, and where its files are.
    assert summary["choices"] == {"objective": "nonsaturating", "model": "mlp", "data": "ring8", "optimizer": "adam", "augment": "none",
                                  "metrics": summary["choices"]["metrics"], "trainer": "default"}  # fmt: skip
    started, ended = (datetime.fromisoformat(summary[key]) for key in ("started_at", "ended_at"))
    assert started.tzinfo is not None and 0 <= (ended - started).total_seconds() <= summary["wall_time_s"] + 1
    assert (summary["checkpoint"], summary["samples"]) == ("checkpoints/last.ckpt", "samples/last.png")
    assert (run_dir / summary["checkpoint"]).is_file() and (run_dir / summary["samples"]).is_file()
    # Learning rates are float32 in the optimizers: written as the float32 they are, 0.0002, not 0.000199999994.
    assert summary["metrics"]["lr/d"] == 0.0002 and summary["metrics"]["lr/g"] == 0.0002
    # What that time was spent on: this process's cores, the thread count trainer.num_threads set, this CPU.
    machine = summary["machine"]
    assert (machine["threads"], machine["processes"], machine["torch"]) == (1, 1, torch.__version__)
    assert machine["cpus"] == len(os.sched_getaffinity(0)) and machine["device"] == (
        "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name()
    )
    assert machine["processor"] and (
        not Path("/proc/cpuinfo").exists() or machine["processor"] in Path("/proc/cpuinfo").read_text()
    )
    assert summary["returned"] is None  # no optimized_metric configured
    assert sorted(p.name for p in (run_dir / "samples").glob("step_*.png")) == [
        "step_000100.png",
        "step_000200.png",
        "step_000300.png",
    ]
    assert (run_dir / "samples" / "last.png").read_bytes() == (run_dir / "samples" / "step_000300.png").read_bytes()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["gan_lightning"]["steps_done"] == 300
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == sorted(rows[0].split(","))  # Lightning's CSV header
    assert len(rows) - 1 == 300 // 50  # one row per log_every_n_steps


def test_optimized_metric_is_returned_to_the_sweeper(run_dir):
    summary = run_in_process(
        ["data=ring8", "model=mlp", "trainer.max_steps=20", "logger=none", "optimized_metric=loss/d", *FAST], run_dir
    )
    assert summary["returned"] == pytest.approx(summary["metrics"]["loss/d"])


def test_fashion_mnist_slice_with_dcgan_and_offline_wandb(run_dir):
    summary = run_in_process(
        ["data.limit=512", "logger=wandb", "trainer.max_steps=30", "callbacks.num_samples=16", *FAST], run_dir
    )
    assert summary["status"] == "completed" and summary["global_step"] == 30
    grid = np.asarray(Image.open(run_dir / "samples" / "last.png"))
    # 16 images of 28×28 in a 4×4 grid with 2-pixel padding (122 px), enlarged 5 times to at least 512 px
    # (callbacks.samples_size), each pixel a 5×5 block.
    assert grid.shape[:2] == (5 * 122, 5 * 122)
    assert np.array_equal(grid, grid[::5, ::5].repeat(5, axis=0).repeat(5, axis=1))
    assert grid[::5, ::5].std() > 0  # a picture, not a blank
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and list(offline_runs[0].glob("run-*.wandb"))
    assert summary["wandb_dir"] == str(offline_runs[0])


def test_same_seed_gives_the_same_training(tmp_path):
    args = ["data=ring8", "model=mlp", "trainer.max_steps=40", "logger=none", "trainer.deterministic=true", *FAST]
    first = run_in_process(args, tmp_path / "a")
    second = run_in_process(args, tmp_path / "b")
    other = run_in_process([*args, "seed=1"], tmp_path / "c")
    assert first["metrics"] == second["metrics"]
    assert first["metrics"] != other["metrics"]
    weights = [torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"] for d in "ab"]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.slow
@pytest.mark.timeout(600)  # minutes of training: past the suite's 240 s limit on a busy machine
def test_default_run_learns_fashion_mnist(run_dir, domain_extractor):
    """`make run`'s configuration, unchanged: its samples must match the data's pixel statistics, and it measures
    them every 1 000 steps for a small share of its wall time (the real images' features included, extracted once
    per cache: docs/metrics.md, "Cost", has the measured share)."""
    summary = run_in_process([], run_dir, defaults=False)
    assert summary["status"] == "completed" and summary["global_step"] == 5000
    assert (run_dir / "samples" / "step_005000.png").is_file() and list((run_dir / "wandb").glob("offline-run-*"))
    (wandb_run,) = [WandbRun(folder) for folder in (run_dir / "wandb").glob("*run-*")]
    for name in ("fid", "is_mean", "kid_mean", "precision", "recall"):
        logged = [
            (row["trainer/global_step"], row[f"metrics/{name}"])
            for row in wandb_run.history
            if f"metrics/{name}" in row
        ]
        assert [step for step, _ in logged] == [1000, 2000, 3000, 4000, 5000] and logged[-1][1] == pytest.approx(
            summary["metrics"][name]
        )
    fid = [value for _, value in wandb_run.metric("metrics/fid")]
    assert fid[-1] < 0.6 * fid[0]  # the curve the README shows falls
    assert (
        summary["metrics_protocol"]["generated"] == 5000 and 0 < summary["evaluation_s"] < 0.1 * summary["wall_time_s"]
    )
    cfg = to_config(compose_config([]))
    real = cfg.data.load(seed=0)[:2000]
    module = build_module(cfg)
    module.load_state_dict(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    z = module.generator.sample_latent(2000, generator=torch.Generator().manual_seed(1))
    fake, untrained = module.generate(z), build_module(cfg).generate(z)

    def background(x):  # share of pixels at the black background; about half in Fashion-MNIST
        return (x < -0.9).float().mean().item()

    def pixel_error(x, statistic):
        return (statistic(x) - statistic(real)).abs().mean().item()

    assert abs(background(fake) - background(real)) < 0.05 < abs(background(untrained) - background(real))
    # The mean image (a silhouette of clothing) and the per-pixel spread of the samples match the data's.
    for statistic in (lambda x: x.mean(0), lambda x: x.std(0)):
        assert pixel_error(fake, statistic) < 0.35 * pixel_error(untrained, statistic)


@pytest.mark.parametrize("choice", [["debug=fast_dev_run"], ["trainer.fast_dev_run=true", "data=ring8", "model=mlp"]])
def test_a_smoke_run_goes_through_everything_a_run_does_in_five_steps(tmp_path, choice):
    from tests.helpers.commands import run_command

    run_dir = tmp_path / "run"
    result = run_command(
        [*choice, f"hydra.run.dir={run_dir}"], cwd=tmp_path, defaults=False
    )  # W&B and metrics as configured
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == 5
    with open(run_dir / "csv" / "metrics.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f) if row["loss/d"]] == [1, 2, 3, 4, 5]  # every step logged
    assert not (run_dir / "wandb").exists()  # no W&B in a smoke run
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "samples" / "step_000005.png").is_file()
    protocol = summary["metrics_protocol"]  # the metrics the data calls for, once, on a few samples
    if "debug=fast_dev_run" in choice:
        assert (protocol["generated"], protocol["real"]) == (200, 500) and "fid" in summary["metrics"]
    else:
        assert protocol["samples"] == 500 and "modes" in summary["metrics"]

"""End-to-end runs through gan_lightning.run: the files a run leaves and what summary.json says."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.helpers.hydra import run_in_process

FAST = ["callbacks.progress_every_n_steps=0"]


def test_ring8_run_writes_summary_samples_checkpoint_and_csv(run_dir):
    summary = run_in_process(
        ["data=ring8", "model=mlp", "trainer.max_steps=300", "logger=csv", "callbacks.samples_every_n_steps=100", "callbacks.checkpoint_every_n_steps=100", *FAST],
        run_dir,
    )
    assert summary["status"] == "completed"
    assert summary["global_step"] == 300
    assert {"loss/d", "loss/g", "d/real", "d/fake"} <= set(summary["metrics"])
    assert summary["overrides"][:3] == ["data=ring8", "model=mlp", "trainer.max_steps=300"]
    assert 0 < summary["wall_time_s"] < 120
    assert summary["returned"] is None  # no optimized_metric configured
    assert sorted(p.name for p in (run_dir / "samples").glob("step_*.png")) == ["step_000100.png", "step_000200.png", "step_000300.png"]
    assert (run_dir / "samples" / "last.png").read_bytes() == (run_dir / "samples" / "step_000300.png").read_bytes()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["gan_lightning"]["steps_done"] == 300
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == sorted(rows[0].split(","))  # Lightning's CSV header
    assert len(rows) - 1 == 300 // 50  # one row per log_every_n_steps


def test_optimized_metric_is_returned_to_the_sweeper(run_dir):
    summary = run_in_process(["data=ring8", "model=mlp", "trainer.max_steps=20", "logger=none", "optimized_metric=loss/d", *FAST], run_dir)
    assert summary["returned"] == pytest.approx(summary["metrics"]["loss/d"])


def test_fashion_mnist_slice_with_dcgan_and_offline_wandb(run_dir):
    summary = run_in_process(["data.limit=512", "trainer.max_steps=30", "callbacks.num_samples=16", *FAST], run_dir)
    assert summary["status"] == "completed" and summary["global_step"] == 30
    grid = Image.open(run_dir / "samples" / "last.png")
    # 16 images of 28×28 in a 4×4 grid with 2-pixel padding.
    assert grid.size == (4 * 30 + 2, 4 * 30 + 2)
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
def test_default_config_learns_fashion_mnist_structure(run_dir):
    """A shortened default run: generated images must move from noise towards the data's pixel statistics."""
    summary = run_in_process(["trainer.max_steps=1500", "callbacks.num_samples=256", *FAST], run_dir)
    assert summary["status"] == "completed"
    # Fashion-MNIST is mostly black background: about half of all pixels are exactly 0 (−1 after scaling).
    from gan_lightning.config import to_config
    from tests.helpers.hydra import compose_config

    cfg = to_config(compose_config([]))
    real = cfg.data.load(seed=0)[:2000]
    from gan_lightning.build import build_module

    module = build_module(cfg)
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    fake = module.generate(module.generator.sample_latent(2000))
    untrained = build_module(cfg).generate(module.generator.sample_latent(2000))
    background = lambda x: (x < -0.9).float().mean().item()  # noqa: E731
    assert abs(background(fake) - background(real)) < 0.1
    assert abs(background(untrained) - background(real)) > 0.3
    # Per-pixel means: the trained G's mean image is close to the data's (a silhouette of clothing).
    error_trained = (fake.mean(0) - real.mean(0)).abs().mean().item()
    error_untrained = (untrained.mean(0) - real.mean(0)).abs().mean().item()
    assert error_trained < 0.1 < error_untrained

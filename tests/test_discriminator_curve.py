"""On 1-D data every sample picture also draws D(x) over the data's range and writes the curve as CSV."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.hydra import run_in_process

QUIET = ["logger=none", "callbacks.progress_every_n_steps=0"]
ONE_D = [
    "data=gaussian1d",
    "model=mlp",
    "trainer.max_steps=100",
    "callbacks.samples_every_n_steps=50",
    "callbacks.num_samples=500",
    *QUIET,
]


def read_curve(path):
    return np.genfromtxt(path, delimiter=",", names=True)


def test_classifier_d_is_drawn_as_a_probability_over_the_data_range(tmp_path):
    summary = run_in_process([*ONE_D, "objective=minimax"], tmp_path)
    assert summary["status"] == "completed"
    for step in (50, 100):
        assert (tmp_path / "samples" / f"step_{step:06d}.png").is_file()
        curve = read_curve(tmp_path / "samples" / f"step_{step:06d}.csv")
        assert curve.dtype.names == ("x", "p_data", "p_g", "p_g_kde", "d")
        assert len(curve) == 400
        # The data's range, N(2, 0.5²) ± 5σ, and D as a probability.
        assert curve["x"][0] == pytest.approx(-0.5) and curve["x"][-1] == pytest.approx(4.5)
        assert ((curve["d"] > 0) & (curve["d"] < 1)).all()
        assert curve["p_data"].max() == pytest.approx(1 / (0.5 * np.sqrt(2 * np.pi)), rel=1e-3)
        # Both estimates of p_g are densities of all samples: over the range they hold the same mass, at most 1
        # (less while some of G's samples still lie outside it).
        dx = curve["x"][1] - curve["x"][0]
        mass, kde_mass = curve["p_g"].sum() * dx, curve["p_g_kde"].sum() * dx
        assert 0.5 < mass < 1.02 and kde_mass == pytest.approx(mass, abs=0.05)


def test_critic_scores_are_written_as_they_are(tmp_path):
    run_in_process([*ONE_D, "objective=wgan_gp"], tmp_path)
    curve = read_curve(tmp_path / "samples" / "step_000100.csv")
    assert len(curve) == 400 and np.isfinite(curve["d"]).all()
    assert not ((curve["d"] > 0) & (curve["d"] < 1)).all()  # raw scores, not squashed into probabilities


def test_no_curve_for_a_d_that_scores_packs(tmp_path):
    run_in_process([*ONE_D, "model.pack=2"], tmp_path)
    assert (tmp_path / "samples" / "step_000100.png").is_file()
    assert not (tmp_path / "samples" / "step_000100.csv").exists()

"""Optuna searches (hparams_search=ring8_optuna): trials run as jobs of a multirun, each returning reverse_kl."""

from __future__ import annotations

import json
import math

import optuna
import yaml

from tests.helpers.commands import run_command

QUIET = ["logger=csv", "callbacks.progress_every_n_steps=0", "trainer.max_steps=200"]


def summaries(sweep, n):
    return [json.loads((sweep / str(job) / "summary.json").read_text()) for job in range(n)]


def test_three_trial_search_names_the_best_parameters(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_command(
        [
            "-m",
            "hparams_search=ring8_optuna",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.n_jobs=3",
            *QUIET,
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials = summaries(sweep, 3)
    assert not (sweep / "3").exists()
    assert all(s["status"] == "completed" and s["global_step"] == 200 for s in trials)
    values = [s["metrics"]["reverse_kl"] for s in trials]
    assert all(0 <= v < 2.08 for v in values)  # finite, below KL(one mode ‖ uniform over 8) = log 8
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optimizer.g.lr", "optimizer.d.lr", "trainer.d_steps"}
    assert best["best_value"] == min(values)
    winner = trials[values.index(min(values))]["overrides"]
    assert all(f"{name}={value}" in winner for name, value in best["best_params"].items())
    assert (
        all(1e-5 <= best["best_params"][f"optimizer.{n}.lr"] <= 1e-2 for n in "gd")
        and 1 <= best["best_params"]["trainer.d_steps"] <= 5
    )


def test_failed_and_diverged_trials_do_not_stop_the_study(tmp_path):
    # With the sampler's seed 0 the four trials draw: a diverging D learning rate (twice), model=dcgan on
    # 2-D points (a failure), and one that trains.
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hparams_search=ring8_optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "optimizer.d.lr=choice(1e30,1e-4)",
        "model=choice(dcgan,mlp)",
    ]
    result = run_command([*args, *QUIET, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the study ran to its end; not every trial completed
    output = result.stdout + result.stderr
    trials = summaries(sweep, 4)
    assert [s["status"] for s in trials] == ["diverged", "failed", "diverged", "completed"]
    assert f"sweep {sweep}: 4 jobs: 1 completed, 1 failed, 2 diverged" in output
    # A diverged trial is told to Optuna as the worst value (+inf when minimising); only the failed one is
    # recorded as a failed trial (it returns no value).
    study = optuna.load_study(study_name="ring8_optuna", storage=f"sqlite:///{sweep / 'study.db'}")
    assert [(t.state.name, t.value) for t in study.trials] == [
        ("COMPLETE", math.inf),
        ("FAIL", None),
        ("COMPLETE", math.inf),
        ("COMPLETE", trials[3]["metrics"]["reverse_kl"]),
    ]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == trials[3]["metrics"]["reverse_kl"]
    assert best["best_params"]["optimizer.d.lr"] == 1e-4 and best["best_params"]["model"] == "mlp"


def test_recipe_search_maximises_balanced_hq_fraction_on_grid25_and_names_the_best_trial(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "experiment=mode_coverage_recipe",
        "hparams_search=mode_coverage_recipe",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_jobs=3",
    ]
    result = run_command([*args, *QUIET, "metrics.every_n_steps=100", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trials = summaries(sweep, 3)
    assert not (sweep / "3").exists()  # the preset's sweep over seeds is replaced by the search's trials
    assert all(
        s["status"] == "completed" and "data=grid25" in s["overrides"] and "seed=0" in s["overrides"] for s in trials
    )
    values = [s["metrics"]["balanced_hq_fraction"] for s in trials]
    for s in trials:  # never above the plain high-quality share: each mode counts at most its fair share
        assert s["metrics"]["balanced_hq_fraction"] <= s["metrics"]["hq_fraction"]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert len(set(values)) > 1 and best["best_value"] == max(values)  # maximised, not minimised
    assert {"objective", "regularization.r1_gamma", "optimizer.g.lr", "model.g_norm"} <= set(best["best_params"])
    winner = trials[values.index(max(values))]["overrides"]
    assert all(f"{name}={value}" in winner for name, value in best["best_params"].items())

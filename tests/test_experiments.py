"""Every study in conf/experiment/ composes, its sweep parses, and one job of it runs for a few steps."""

from __future__ import annotations

import json
import math

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.conftest import REPO
from tests.helpers.commands import command
from tests.helpers.hydra import CONF_DIR, compose_config, run_in_process

QUIET = ["logger=none", "callbacks.progress_every_n_steps=0", "callbacks.checkpoint_every_n_steps=0"]
PARZEN_SMALL = ["metrics.num_samples=300", "metrics.validation_num_samples=100", "metrics.test_num_samples=200"]
# A tiny budget per study: a few steps on little data, cheap metrics. A new study adds its line here.
SMOKE = {
    "theory_1d": [
        "trainer.max_steps=3",
        "data.num_samples=1000",
        "callbacks.num_samples=200",
        "callbacks.samples_every_n_steps=0",
    ],
    "mode_coverage_2d": ["trainer.max_steps=3", "data.num_samples=1000", "model.pack=2", "metrics.num_samples=200"],
    "mode_coverage_recipe": ["trainer.max_steps=3", "data.num_samples=1000", "metrics.num_samples=200"],
    "objectives_fashion_mnist": [
        "trainer.max_steps=3",
        "data.limit=256",
        "metrics.final_num_samples=250",
        "metrics.real_num_samples=250",
        "metrics.kid_subset_size=100",
        "callbacks.num_samples=4",
    ],  # fmt: skip
    "limited_data": [
        "trainer.max_steps=3",
        "data.subset=256",
        "augment=ada_short",
        "metrics.final_num_samples=250",
        "metrics.real_num_samples=250",
        "metrics.kid_subset_size=100",
    ],
    # MNIST is not on every machine; Fashion-MNIST has the same format.
    "goodfellow2014": ["trainer.max_steps=3", "data.dataset=fashion_mnist", "data.limit=500", *PARZEN_SMALL],
}
STUDIES = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))


def test_every_study_has_a_smoke_run_and_a_readme():
    assert sorted(SMOKE) == STUDIES
    for study in STUDIES:
        assert (REPO / "experiments" / study / "README.md").is_file(), study


@pytest.mark.parametrize("study", STUDIES)
def test_sweep_parameters_name_settings_of_the_config(study):
    cfg = compose_config([f"experiment={study}"], with_hydra=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    assert params, f"{study} sweeps nothing"
    overrides = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    for override in overrides:
        assert override.is_sweep_override(), override
        key = override.key_or_group
        absent = object()
        assert key in cfg or OmegaConf.select(cfg, key, default=absent) is not absent, (
            f"{study}: {key} is not a setting"
        )


@pytest.mark.parametrize("study", STUDIES)
def test_one_job_of_every_study_runs(tmp_path, study, request):
    if "features" in compose_config([f"experiment={study}"]).metrics:  # metrics=image
        request.getfixturevalue("domain_extractor")  # built once per test session
    summary = run_in_process([f"experiment={study}", *SMOKE[study], *QUIET], tmp_path)
    assert summary["status"] == "completed" and summary["global_step"] == 3, summary.get("error")
    assert math.isfinite(summary["metrics"]["loss/d"]) and math.isfinite(summary["metrics"]["loss/g"]), summary[
        "metrics"
    ]
    expected = {"theory_1d": "d/real", "mode_coverage_2d": "reverse_kl", "mode_coverage_recipe": "balanced_hq_fraction", "objectives_fashion_mnist": "fid",
                "limited_data": "fid", "goodfellow2014": "parzen_log_likelihood"}  # fmt: skip
    assert expected[study] in summary["metrics"]


def test_parzen_estimate_of_a_checkpoint_matches_the_one_at_the_end_of_training(tmp_path):
    # The paper's evaluation through the evaluate command, on Fashion-MNIST (same format as MNIST).
    summary = run_in_process(["experiment=goodfellow2014", *SMOKE["goodfellow2014"], *QUIET], tmp_path)
    result = command(
        "evaluate", [f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", "metrics=parzen", *PARZEN_SMALL], cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    sigmas = compose_config(["metrics=parzen"]).metrics.sigmas
    assert metrics["parzen_sigma"] in sigmas
    assert metrics["parzen_standard_error"] > 0
    # Same seed, same latents, same validation and test images: the same estimate as at the end of training.
    assert metrics["parzen_log_likelihood"] == pytest.approx(summary["metrics"]["parzen_log_likelihood"], rel=1e-9)
    # 3 steps of training leave G far from the data: far below the paper's 225 (nats, 784 pixels).
    assert metrics["parzen_log_likelihood"] < 0


@pytest.mark.slow
@pytest.mark.timeout(600)  # minutes of training: past the suite's 240 s limit on a busy machine
def test_the_recipe_covers_the_grid_with_high_quality_samples_in_one_cpu_run(tmp_path):
    # experiment=mode_coverage_recipe's seed 0 on grid25 at half its budget (its learning rates fall to 0 over
    # the 20 000 steps), about 6 min on one CPU thread: a regression in the framework's training (objective,
    # R1, EMA, the learning-rate schedule, the networks) shows as lost modes or samples between them.
    summary = run_in_process(
        ["experiment=mode_coverage_recipe", "data=grid25", "seed=0", "trainer.max_steps=20000", *QUIET], tmp_path
    )
    assert summary["status"] == "completed", summary.get("error")
    metrics = summary["metrics"]
    assert metrics["modes"] >= 24 and metrics["hq_fraction"] >= 0.90, metrics


@pytest.mark.parametrize("study", ["theory_1d", "mode_coverage_2d", "mode_coverage_recipe"])
def test_studies_over_seeds_train_their_seeds_vectorized(study):
    from gan_lightning.runs.jobs import VECTORIZED_TARGET
    from gan_lightning.sweeps.vectorized.launcher import plan

    cfg = compose_config([f"experiment={study}"], with_hydra=True)
    assert cfg.hydra.launcher._target_ == VECTORIZED_TARGET and cfg.hydra.launcher.groups == "basic"
    # The sweep's jobs form one group per setting, all of its seeds together.
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    overrides = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    import itertools

    choices = [[f"{o.key_or_group}={v}" for v in o.sweep_string_iterator()] for o in overrides]
    jobs = list(enumerate(list(combination) for combination in itertools.product(*choices)))
    groups = plan(jobs)
    seeds = len(choices[list(params).index("seed")])
    assert len(groups) == len(jobs) // seeds and all(len(group) == seeds for group in groups)


def test_the_pacgan_study_says_which_differences_are_significant_from_its_committed_results():
    # The tables in experiments/mode_coverage_2d/README.md come from this function over the committed results.csv.
    import csv as csv_module
    import importlib.util

    spec = importlib.util.spec_from_file_location("analyse", REPO / "experiments" / "mode_coverage_2d" / "analyse.py")
    analyse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analyse)
    readme = (REPO / "experiments" / "mode_coverage_2d" / "README.md").read_text()
    for results in ("results.csv", "grid25_30k/results.csv"):
        with open(REPO / "experiments" / "mode_coverage_2d" / results, newline="") as f:
            table = analyse.significance(list(csv_module.DictReader(f)))
        assert all(line in readme for line in table.splitlines()[2:]), table
    assert "| grid25 | modes | 6.5 | 4.6 to 8.2 |" in readme and "PacGAN2 better |" in readme


def test_the_objectives_study_states_its_comparison_from_its_committed_compare_csv():
    # The table in experiments/objectives_fashion_mnist/README.md is analyse.tables() over the committed compare.csv,
    # which python -m gan_lightning.compare wrote from the sweep.
    import importlib.util

    folder = REPO / "experiments" / "objectives_fashion_mnist"
    spec = importlib.util.spec_from_file_location("analyse", folder / "analyse.py")
    analyse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analyse)
    table = analyse.tables(analyse.read_compared(folder))
    readme = (folder / "README.md").read_text()
    assert all(line in readme for line in table.splitlines() if line.startswith("| ")), table
    assert table.count("| yes |") + table.count("| no |") == 15 and "Welch's t-tests with Holm's correction" in table


def test_the_limited_data_study_states_its_comparisons_from_its_committed_results():
    import importlib.util

    folder = REPO / "experiments" / "limited_data"
    spec = importlib.util.spec_from_file_location("limited_data_analyse", folder / "analyse.py")
    analyse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analyse)
    readme = (folder / "README.md").read_text()
    budgets = sorted(path for path in folder.glob("steps_*") if path.is_dir())
    assert budgets, "no committed results"
    for budget in budgets:
        runs = analyse.read_results(budget)
        table = analyse.tables(budget, runs)
        assert all(line in readme for line in table.splitlines() if line.startswith("| ")), (budget, table)
        assert table.count("| yes |") + table.count("| no |") == 3 * len(analyse.sizes(runs))


def test_the_search_pruning_study_states_its_tables_from_its_committed_trials():
    # experiments/search_pruning/README.md's tables are analyse.tables() over the committed trials.csv (one row per
    # trial of the six searches, read from their studies).
    import importlib.util

    folder = REPO / "experiments" / "search_pruning"
    spec = importlib.util.spec_from_file_location("search_pruning_analyse", folder / "analyse.py")
    analyse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(analyse)
    rows = analyse.read_trials(folder)
    assert len(rows) == 96 and {r["state"] for r in rows} == {"complete", "pruned"}
    table = analyse.tables(rows)
    readme = (folder / "README.md").read_text()
    assert all(line in readme for line in table.splitlines() if line.strip()), table
    # the searches without pruning ran every trial whole: 16 × 2 000 steps each
    assert all(sum(r["steps"] for r in rows if (r["arm"], r["seed"]) == ("full", s)) == 32000 for s in (0, 1, 2))

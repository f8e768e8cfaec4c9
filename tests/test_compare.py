"""python -m gan_lightning.compare: arms over seeds, their intervals and tests, checked against scipy, against
constructed samples with known answers, and on real sweeps."""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from gan_lightning.results.statistics import (
    describe,
    difference_of_means,
    expected_best,
    holm,
    mean_interval,
    smallest_p_value,
)
from gan_lightning.tracking.wandb_records import WandbRun
from tests.helpers.commands import command, run_command


def compare(*args: str, cwd: Path, wandb: bool = False):
    """The command in this process; its W&B run only where the test reads it back."""
    return command("compare", [*args, f"wandb={str(wandb).lower()}"], cwd=cwd)


# The statistics


def test_a_known_difference_is_found_with_its_sign_and_size():
    rng = np.random.default_rng(0)
    low, high = rng.normal(10.0, 1.0, 8), rng.normal(13.0, 1.0, 8)
    found = difference_of_means(low, high, seed=0)
    assert found.difference == pytest.approx(low.mean() - high.mean())
    assert found.p_value < 0.01 and found.interval[0] < found.difference < found.interval[1] < 0
    assert found.interval[0] < -3.0 < found.interval[1] or abs(found.difference + 3.0) < 1.5
    # The same samples the other way round: the sign turns, the test does not change.
    other = difference_of_means(high, low, seed=0)
    assert other.difference == pytest.approx(-found.difference) and other.p_value == pytest.approx(found.p_value)


def test_the_permutation_test_is_exact_for_small_arms():
    # 3 against 3: 20 relabellings, of which only the observed one and its mirror are as extreme: p = 2/20.
    assert difference_of_means([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], seed=0).p_value == pytest.approx(0.1)
    assert smallest_p_value(3, 3) == pytest.approx(0.1) and smallest_p_value(2, 2) == pytest.approx(1 / 3)
    # Counted by hand over every relabelling of 4 against 4.
    a, b = [0.2, 1.1, 0.7, 1.9], [1.5, 2.2, 0.9, 2.8]
    pooled, observed = a + b, abs(statistics.fmean(a) - statistics.fmean(b))
    extreme = 0
    for chosen in itertools.combinations(range(8), 4):
        first = [pooled[i] for i in chosen]
        second = [pooled[i] for i in range(8) if i not in chosen]
        extreme += abs(statistics.fmean(first) - statistics.fmean(second)) >= observed - 1e-12
    assert difference_of_means(a, b, seed=0).p_value == pytest.approx(extreme / 70)


def test_arm_statistics_agree_with_scipy():
    values = [61.8, 58.2, 70.4, 66.1, 59.9]
    arm = describe(values, seed=0)
    assert arm.n == 5 and arm.mean == pytest.approx(np.mean(values))
    assert arm.std == pytest.approx(np.std(values, ddof=1)) and arm.sem == pytest.approx(scipy_stats.sem(values))
    reference = scipy_stats.bootstrap((np.asarray(values),), np.mean, n_resamples=10_000, method="BCa",
                                      random_state=np.random.default_rng(0)).confidence_interval  # fmt: skip
    assert arm.interval == pytest.approx((reference.low, reference.high))
    one = describe([3.0], seed=0)
    assert (one.n, one.mean, one.std, one.sem, one.interval) == (1, 3.0, None, None, None)


@pytest.mark.parametrize("test", ["permutation", "welch"])
def test_on_null_data_at_most_7_percent_of_200_comparisons_are_significant(test):
    rng = np.random.default_rng(1)
    significant = sum(
        difference_of_means(rng.normal(0.0, 1.0, 5), rng.normal(0.0, 1.0, 5), seed=case, test=test).p_value < 0.05
        for case in range(200)
    )
    assert 0.01 <= significant / 200 <= 0.07  # not a test that never rejects either


def test_welchs_test_is_scipys_and_finds_what_five_runs_against_five_can_show():
    a, b = [61.8, 58.2, 70.4, 66.1, 59.9], [80.2, 77.5, 85.0, 79.1, 90.3]
    found = difference_of_means(a, b, seed=0, test="welch")
    assert found.p_value == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert found.difference == pytest.approx(np.mean(a) - np.mean(b)) and found.interval[1] < 0
    # Fully separated, the exact permutation test cannot go below 2/252 = 0.0079; Welch's p is far smaller.
    assert difference_of_means(a, b, seed=0).p_value == pytest.approx(2 / 252)
    assert found.p_value < 0.001


def test_the_bootstrap_interval_covers_the_true_mean_in_93_to_97_percent_of_200_cases():
    rng = np.random.default_rng(0)
    covered = 0
    for case in range(200):
        low, high = mean_interval(rng.normal(3.0, 2.0, 20), seed=case)
        covered += low <= 3.0 <= high
    assert 0.93 <= covered / 200 <= 0.97


def test_holm_adjusts_step_down_and_keeps_the_order():
    # Holm (1979): sorted p 0.01, 0.03, 0.04, 0.5 of 4 tests -> 0.04, 0.09, 0.09 (monotone), 0.5.
    assert holm([0.04, 0.01, 0.5, 0.03]) == pytest.approx([0.09, 0.04, 0.5, 0.09])
    assert holm([0.2]) == [0.2] and holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    # Never below Bonferroni's first step, never above Bonferroni.
    p = [0.001, 0.02, 0.013, 0.4]
    assert all(min(1.0, q) <= min(1.0, 4 * q) and h >= q for q, h in zip(p, holm(p)))


def test_the_expected_best_of_k_trials_is_the_mean_over_every_subset_of_k():
    values = [88.3, 145.3, 120.0, 99.5, 160.2, 91.0]
    for k in range(1, len(values) + 1):
        subsets = list(itertools.combinations(values, k))
        assert expected_best(values, k, lower_is_better=True) == pytest.approx(np.mean([min(s) for s in subsets]))
        assert expected_best(values, k, lower_is_better=False) == pytest.approx(np.mean([max(s) for s in subsets]))
    assert expected_best(values, 1, True) == pytest.approx(np.mean(values)) and expected_best(values, 6, True) == 88.3


# The command on constructed runs


def write_run(folder: Path, overrides: List[str], status: str = "completed", metrics: Dict[str, float] = None,
              protocol: Dict = None) -> None:  # fmt: skip
    folder.mkdir(parents=True)
    summary = {"status": status, "global_step": 100, "overrides": overrides, "metrics": metrics or {},
               "metrics_protocol": protocol or {"samples": 2500, "latent_seed": 0}}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))


def sweep_of(folder: Path, arms: Dict[str, List[float]], key: str = "objective") -> Path:
    job = 0
    for arm, values in arms.items():
        for seed, value in enumerate(values):
            write_run(folder / str(job), [f"{key}={arm}", f"seed={seed}", "data=ring8"], metrics={"hq_fraction": value},
                      protocol={"samples": 2500, "latent_seed": seed})  # fmt: skip
            job += 1
    return folder


def test_a_metric_whose_two_forms_are_the_same_numbers_is_compared_once_and_welch_prints_no_library_warning(tmp_path):
    sweep = tmp_path / "sweep"
    for job, (arm, value) in enumerate([("hinge", 0.5), ("hinge", 0.5 + 1e-13), ("minimax", 0.5), ("minimax", 0.5)]):
        # balanced data: hq_fraction and balanced_hq_fraction are the same numbers in every run
        write_run(sweep / str(job), [f"objective={arm}", f"seed={job}"],
                  metrics={"hq_fraction": value, "balanced_hq_fraction": value})  # fmt: skip
    result = compare(f"runs={sweep}", "test=welch", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "balanced_hq_fraction: the same values as hq_fraction in every run, reported once." in result.stdout
    assert result.stdout.count("no significant difference in hq_fraction") == 1
    assert "no significant difference in balanced_hq_fraction" not in result.stdout
    # Welch's test on values that agree to 13 digits: scipy's precision warning is not the user's to read
    assert "Warning" not in result.stdout + result.stderr


def test_arms_are_the_overrides_that_differ_but_the_seed_and_the_findings_are_sentences(tmp_path):
    sweep = sweep_of(tmp_path / "sweep", {"minimax": [0.1, 0.12, 0.08, 0.11, 0.09], "hinge": [0.5, 0.55, 0.6, 0.52, 0.58],
                                          "wasserstein": [0.11, 0.1, 0.09, 0.12, 0.1]})  # fmt: skip
    result = compare(f"runs={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (sweep / "compare.md").read_text()
    assert "| objective=minimax | 5 | 5 | 0 | 0 | 0 |" in text
    # hinge beats both (higher hq_fraction is better); minimax and wasserstein are not told apart.
    assert any(line.startswith("objective=minimax has lower hq_fraction than objective=hinge by 0.45 [95 % CI")
               and "(Holm, 3 pairs): objective=hinge is better." in line for line in result.stdout.splitlines())  # fmt: skip
    assert (
        "objective=minimax and objective=wasserstein: no significant difference in hq_fraction at n = 5 and 5"
        in result.stdout
    )
    with open(sweep / "compare.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["kind"] == "final"]
    means = {row["arm"]: float(row["mean"]) for row in rows if not row["against"]}
    assert means == pytest.approx({"objective=minimax": 0.1, "objective=hinge": 0.55, "objective=wasserstein": 0.104})
    pairs = [row for row in rows if row["against"]]
    assert len(pairs) == 3 and sorted(float(r["p_holm"]) >= float(r["p"]) for r in pairs) == [True] * 3
    assert (sweep / "compare_hq_fraction_final.png").stat().st_size > 0


def test_a_search_reads_as_the_expected_best_against_its_number_of_trials(tmp_path):
    trials = {"0.0001": [0.3], "0.0002": [0.5], "0.0004": [0.2], "0.0008": [0.6]}  # 4 trials of a learning-rate search
    sweep = sweep_of(tmp_path / "search", trials, key="optimizer.g.lr")
    result = compare(f"runs={sweep}", "budget=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (sweep / "compare.md").read_text()
    # Higher hq_fraction is better: k=1 the mean 0.4; k=4 the best 0.6; k=2 (0.5+0.3+0.6+0.5+0.6+0.6)/6 = 0.517.
    assert "| expected best | 0.4 | 0.517 | 0.575 | 0.6 |" in text
    assert (sweep / "compare_budget_hq_fraction.png").stat().st_size > 0


def test_the_report_of_a_sweep_gives_each_arm_its_mean_and_standard_error_over_seeds(tmp_path):
    sweep = sweep_of(tmp_path / "sweep", {"minimax": [0.1, 0.12, 0.08], "hinge": [0.5, 0.55, 0.6]})
    write_run(sweep / "6", ["objective=hinge", "seed=3", "data=ring8"], status="diverged")
    result = command("report", [f"dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (sweep / "report.md").read_text()
    se = np.std([0.5, 0.55, 0.6], ddof=1) / math.sqrt(3)
    assert "## Arms over seeds" in text and "| objective=minimax | 3 / 3 | 0.1000 ± 0.0115 |" in text
    assert f"| objective=hinge | 3 / 4 | 0.5500 ± {se:.4f} |" in text


def test_the_tables_and_findings_are_one_wandb_run_in_the_sweeps_group(tmp_path):
    sweep = sweep_of(tmp_path / "2026-12-06" / "14-02-11", {"minimax": [0.1, 0.12, 0.08], "hinge": [0.5, 0.55, 0.6]})
    result = compare(f"runs={sweep}", cwd=tmp_path, wandb=True)
    assert result.returncode == 0, result.stderr
    (folder,) = (sweep / "wandb").glob("offline-run-*")
    run = WandbRun(folder)
    assert run.run["group"] == "2026-12-06_14-02-11" and run.run["job_type"] == "compare"
    assert run.run["project"] == "gan_lightning"
    logged = {key for row in run.history for key in row}
    assert {"compare/table", "compare/findings"} <= logged
    (table_file,) = folder.glob("files/media/table/compare/table_*.table.json")
    table = json.loads(table_file.read_text())
    with open(sweep / "compare.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert table["columns"] == rows[0] and len(table["data"]) == len(rows) - 1
    (findings_file,) = folder.glob("files/media/table/compare/findings_*.table.json")
    assert [row[0] for row in json.loads(findings_file.read_text())["data"]] == [
        line for line in result.stdout.splitlines() if not line.startswith(("2 ", "6 runs"))
    ]


def test_unfinished_runs_are_counted_and_left_out_and_other_protocols_are_not_pooled(tmp_path):
    sweep = sweep_of(tmp_path / "sweep", {"minimax": [0.1, 0.2, 0.15], "hinge": [0.5, 0.6, 0.55]})
    write_run(sweep / "6", ["objective=hinge", "seed=3", "data=ring8"], status="diverged")
    write_run(sweep / "7", ["objective=minimax", "seed=3", "data=ring8"], status="interrupted")
    (sweep / "8").mkdir()
    (sweep / "8" / "summary.json").write_text('{"status": "compl')
    result = compare(f"runs={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (sweep / "compare.md").read_text()
    assert "| objective=hinge | 4 | 3 | 1 | 0 | 0 |" in text and "| objective=minimax | 4 | 3 | 0 | 0 | 1 |" in text
    assert f"- objective=hinge: {sweep / '6'} (diverged)" in text
    assert f"left out {sweep / '8' / 'summary.json'}: it cannot be read" in result.stderr
    # One run measured with another sample count: the metric is refused, naming the runs of each protocol.
    write_run(sweep / "9", ["objective=hinge", "seed=4", "data=ring8"], metrics={"hq_fraction": 0.5},
              protocol={"samples": 500, "latent_seed": 4})  # fmt: skip
    refused = compare(f"runs={sweep}", cwd=tmp_path)
    assert refused.returncode == 0
    assert "hq_fraction (final): not compared, measured under 2 protocols (" in refused.stdout
    assert str(sweep / "9") in refused.stdout


def test_small_arms_and_bad_input_are_stated_never_a_traceback(tmp_path):
    sweep = sweep_of(tmp_path / "sweep", {"minimax": [0.1, 0.2], "hinge": [0.5, 0.6]})
    result = compare(f"runs={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("With n = 2 and 2 runs per arm no permutation test can give p below 0.333, so no "
                                    "difference below can be significant at 0.05: 4 runs per arm could show one")  # fmt: skip
    assert result.stdout.count("no permutation test") == 1  # said once, not in every sentence
    # Six arms of five: fifteen pairs, and Holm's first step multiplies the smallest p (2/252) by 15.
    six = sweep_of(tmp_path / "six", {f"a{k}": [10.0 * k + d for d in (0.1, 0.5, 0.2, 0.4, 0.3)] for k in range(6)})
    result = compare(f"runs={six}", cwd=tmp_path)
    assert "can give p below 0.00794 (0.119 after Holm's correction for 15 pairs)" in result.stdout
    assert "6 runs per arm could show one, and test=welch can at these n" in result.stdout
    result = compare(f"runs={six}", "test=welch", cwd=tmp_path)
    assert result.stdout.count("is better.") == 15 and "Welch's two-sided t-test" in (six / "compare.md").read_text()
    lone = sweep_of(tmp_path / "lone", {"minimax": [0.1], "hinge": [0.5, 0.6]})
    result = compare(f"runs={lone}", cwd=tmp_path)
    assert result.returncode == 0 and "| objective=minimax | 1 | 0.1 | – | – | – |" in (lone / "compare.md").read_text()
    # 1 against 2: three relabellings, the observed one the most extreme: p = 1/3, which is also the floor stated
    assert (
        "(difference -0.45, p = 0.333, Holm, 1 pair)." in result.stdout
        and "can give p below 0.333" in result.stdout in result.stdout
    )
    (tmp_path / "empty").mkdir()
    for args, message in [
        ([f"runs={tmp_path / 'empty'}"], "no readable run"),
        ([f"runs={tmp_path / 'missing'}"], "no such directory"),
        ([f"runs={sweep}", "alpha=2"], "alpha=2.0 is not allowed: a level between 0 and 1"),
        ([f"runs={sweep}", "resamples=10"], "resamples='10' is not allowed: a whole number of at least 1000"),
        ([f"runs={sweep}", "test=student"], "test='student' is not allowed: permutation or welch."),
        (
            [f"runs={sweep}", "arms=model.depth"],
            "arms=model.depth: no run sets model.depth; the settings that differ between these runs: objective.",
        ),
    ]:
        refused = compare(*args, cwd=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr, args
    failed = tmp_path / "failed"
    write_run(failed / "0", ["objective=hinge", "seed=0"], status="failed")
    refused = compare(f"runs={failed}", cwd=tmp_path)
    assert refused.returncode == 2 and "none of the 1 runs completed" in refused.stderr


def write_log(folder: Path, rows: List[Dict[str, float]]) -> None:
    """A run's CSV log holding ``rows`` (each a step and its logged values)."""
    (folder / "csv").mkdir(parents=True)
    columns = sorted({key for row in rows for key in row})
    with open(folder / "csv" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def test_each_arm_is_a_curve_over_steps_and_wall_time_with_a_band_over_its_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    periodic, final = {"samples": 2000}, {"samples": 5000}
    fids = {"hinge": [[300.0, 200.0, 150.0], [320.0, 210.0, 140.0], [310.0, 190.0, 145.0]],
            "minimax": [[400.0, 380.0, 390.0], [420.0, 400.0, 370.0], [410.0, 395.0, 380.0]]}  # fmt: skip
    for job, (arm, seed) in enumerate(itertools.product(fids, range(3))):
        folder = sweep / str(job)
        write_run(folder, [f"objective={arm}", f"seed={seed}"], metrics={"fid": fids[arm][seed][-1]}, protocol=final)
        summary = json.loads((folder / "summary.json").read_text())
        summary["metrics_best"] = {"fid": {"value": min(fids[arm][seed][:2]), "step": 100}, "protocol": periodic}
        (folder / "summary.json").write_text(json.dumps(summary))
        rows = [{"step": step, "loss/d": 0.5} for step in range(10, 151, 10)]  # training rows, no score
        rows += [{"step": step, "metrics/fid": fid, "time/wall_s": step * (1 + seed) / 10}
                 for step, fid in zip((50, 100, 150), fids[arm][seed])]  # fmt: skip
        if job == 0:
            rows.append({"step": 120, "metrics/fid": 1.0, "time/wall_s": 5.0})  # a step the other seeds did not score
        write_log(folder, rows)
    result = compare(f"runs={sweep}", "metrics=fid", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with open(sweep / "compare.csv", newline="") as f:
        points = [row for row in csv.DictReader(f) if row["kind"] in ("curve", "curve_final")]
    hinge = [row for row in points if row["arm"] == "objective=hinge"]
    assert [(int(row["step"]), row["kind"]) for row in hinge] == [(50, "curve"), (100, "curve"), (150, "curve_final")]
    for row, step, values in zip(hinge, (50, 100, 150), zip(*fids["hinge"])):
        assert float(row["mean"]) == pytest.approx(np.mean(values)) and int(row["n"]) == 3
        assert float(row["wall_s"]) == pytest.approx(step * (1 + 2 + 3) / 30)  # the seeds' mean wall time there
        assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx(mean_interval(values, seed=0))
    assert len([row for row in points if row["arm"] == "objective=minimax"]) == 3
    assert "## Against steps and wall time" in (sweep / "compare.md").read_text()
    assert (sweep / "compare_fid_curves.png").stat().st_size > 0


def test_each_score_is_logged_with_the_runs_wall_clock_which_a_resumed_run_continues(tmp_path):
    from gan_lightning.checkpoints.resume import load_safely
    from tests.helpers.hydra import run_in_process

    args = ["data=ring8", "model=mlp", "metrics=toy2d", "metrics.every_n_steps=20", "metrics.num_samples=500",
            "callbacks.checkpoint_every_n_steps=20", "trainer.log_every_n_steps=10"]  # fmt: skip
    run_in_process([*args, "trainer.max_steps=40"], tmp_path)
    checkpoint_path = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint = load_safely(checkpoint_path)
    (state,) = [state for state in checkpoint["callbacks"].values() if "wall_s" in state]
    assert state["wall_s"] > 0
    state["wall_s"] = 1000.0  # as if the first segment had trained for 1000 s
    torch.save(checkpoint, tmp_path / "edited.ckpt")  # beside it, then in its place: the loaded one maps the file
    (tmp_path / "edited.ckpt").replace(checkpoint_path)
    summary = run_in_process([*args, "trainer.max_steps=80"], tmp_path)
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        clock = {int(float(row["step"])): float(row["time/wall_s"]) for row in csv.DictReader(f) if row["time/wall_s"]}
    assert sorted(clock) == [20, 40, 60, 80]
    assert 0 < clock[20] < clock[40] < 1000
    assert 1000 < clock[60] < clock[80] < 1000 + summary["segment_wall_time_s"]


# The command on real sweeps

RING8 = ["data=ring8", "model=mlp", "metrics=toy2d", "metrics.every_n_steps=0", "logger=csv", "hydra/launcher=vectorized",
         "callbacks.samples_every_n_steps=0", "callbacks.progress_every_n_steps=0", "seed=0,1,2,3"]  # fmt: skip


@pytest.mark.slow
def test_on_real_sweeps_ten_times_the_training_wins_and_a_setting_that_changes_nothing_does_not(tmp_path):
    longer = tmp_path / "longer"
    trained = run_command(["-m", *RING8, "trainer.max_steps=150,1500", f"hydra.sweep.dir={longer}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = compare(f"runs={longer}", "metrics=hq_fraction", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = [
        line for line in result.stdout.splitlines() if line.startswith("trainer.max_steps=150 has lower hq_fraction")
    ]
    assert len(found) == 1 and found[0].endswith("trainer.max_steps=1500 is better."), result.stdout

    same = tmp_path / "same"
    trained = run_command(["-m", *RING8, "trainer.max_steps=300", "trainer.log_every_n_steps=10,11",
                           f"hydra.sweep.dir={same}"], cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = compare(f"runs={same}", "metrics=hq_fraction", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("trainer.log_every_n_steps=10 and trainer.log_every_n_steps=11: no significant difference in hq_fraction "
            "at n = 4 and 4 (difference 0, p = 1") in result.stdout  # fmt: skip
    assert math.isfinite(float(next(csv.DictReader(open(same / "compare.csv")))["mean"]))

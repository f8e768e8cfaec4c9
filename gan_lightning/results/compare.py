"""The comparison ``python -m gan_lightning.compare`` writes: per metric and arm the mean with its interval, between
every two arms the difference with its interval and a corrected p-value, the sentences that say what was found,
``compare.md``, ``compare.csv`` and the plots."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any, Dict, List

from gan_lightning.lazy import pyplot


def compare(
    arms, metrics: List[str], alpha: float, resamples: int, seed: int, test: str = "permutation"
) -> Dict[str, Any]:
    """Per metric and kind (final, best): each arm's statistics and every pair's difference and test."""
    from gan_lightning.metrics.goals import SUMMARY_GOALS
    from gan_lightning.results.arms import scores
    from gan_lightning.results.statistics import describe, difference_of_means, holm, smallest_p_value

    sections, sentences, seen, floors = [], [], {}, []
    for metric, kind in itertools.product(metrics, ("final", "best")):
        found = scores(arms, metric, kind)
        if found.refused:
            sections.append({"metric": metric, "kind": kind, "refused": found.refused})
            sentences.append(f"{metric} ({kind}): not compared, {found.refused}.")
            continue
        if not found.values:
            continue
        same_as = seen.get(repr(found.values))
        if same_as is not None:  # one evaluation per run (best = final), or balanced data (two forms, one number)
            sentences.append(f"{described(metric, kind)}: the same values as {same_as} in every run, reported once.")
            continue
        seen[repr(found.values)] = described(metric, kind)
        stats = {label: describe(values, seed, resamples) for label, values in found.values.items()}
        pairs = []
        for first, second in itertools.combinations(found.values, 2):
            a, b = found.values[first], found.values[second]
            floor = smallest_p_value(len(a), len(b)) if test == "permutation" else 0.0
            pairs.append((first, second, difference_of_means(a, b, seed, resamples, test), floor))
        for (_, _, difference, _), corrected in zip(pairs, holm([p[2].p_value for p in pairs])):
            difference.p_holm = corrected
        floors += [(floor, len(pairs), len(found.values[first]), len(found.values[second]))
                   for first, second, _, floor in pairs]  # fmt: skip
        lower_is_better = SUMMARY_GOALS.get(metric) == "min"
        for first, second, difference, _ in pairs:
            sentences.append(sentence(metric, kind, first, second, difference, len(pairs), alpha,
                                      len(found.values[first]), len(found.values[second]), lower_is_better))  # fmt: skip
        sections.append({"metric": metric, "kind": kind, "protocol": found.protocol, "stats": stats, "pairs": pairs,
                         "nonfinite": found.nonfinite, "values": found.values})  # fmt: skip
    note = floor_note(floors, alpha)
    return {"sections": sections, "sentences": ([note] if note else []) + sentences, "alpha": alpha,
            "resamples": resamples, "seed": seed, "test": test}  # fmt: skip


def described(metric: str, kind: str) -> str:
    return metric if kind == "final" else f"best periodic {metric}"


def floor_note(floors: List[tuple], alpha: float) -> str:
    """Said once, above the sentences, where the arms are too small for a permutation test to find anything: its
    smallest p-value after Holm's correction, and the runs per arm that could."""
    blocked = [(floor * pairs, floor, pairs, n_a, n_b) for floor, pairs, n_a, n_b in floors if floor * pairs > alpha]
    if not blocked:
        return ""
    from gan_lightning.results.statistics import smallest_p_value

    corrected, floor, pairs, n_a, n_b = min(blocked)
    needed = next(n for n in range(2, 100) if smallest_p_value(n, n) * pairs <= alpha)
    holm = f" ({number(corrected)} after Holm's correction for {pairs} pairs)" if pairs > 1 else ""
    which = (
        "no difference below" if len(blocked) == len(floors) else f"no difference between arms of {n_a} and {n_b} runs"
    )
    return (f"With n = {n_a} and {n_b} runs per arm no permutation test can give p below {number(floor)}{holm}, so "
            f"{which} can be significant at {alpha}: {needed} runs per arm could show one, and test=welch can at these "
            "n (it assumes normally distributed values).")  # fmt: skip


def budget(runs, metrics: List[str]) -> Dict[str, List[float]]:
    """For each metric: the expected best final value of k trials drawn from the completed runs, k = 1 .. n."""
    from gan_lightning.metrics.goals import SUMMARY_GOALS
    from gan_lightning.results.arms import read_value
    from gan_lightning.results.statistics import expected_best

    curves = {}
    for metric in metrics:
        values = [v for v in (read_value(run.summary, metric, "final")[0] for run in runs) if v is not None]
        values = [v for v in values if v == v and abs(v) != float("inf")]
        lower = SUMMARY_GOALS.get(metric) == "min"
        curves[metric] = [expected_best(values, k, lower) for k in range(1, len(values) + 1)]
    return curves


TEST_NAMES = {
    "permutation": "a two-sided permutation test of equal means (exact when the relabellings number at most {resamples})",
    "welch": "Welch's two-sided t-test of equal means (normal values, unequal variances)",
}


def number(value: float) -> str:
    return f"{value:.3g}"


def sentence(metric, kind, first, second, difference, pairs, alpha, n_first, n_second, lower_is_better) -> str:
    what = described(metric, kind)
    holm_note = f"Holm, {pairs} pair{'s' if pairs > 1 else ''}"
    if difference.p_holm < alpha:
        direction = "lower" if difference.difference < 0 else "higher"
        better = (difference.difference < 0) == lower_is_better
        low, high = difference.interval or (float("nan"), float("nan"))
        return (f"{first} has {direction} {what} than {second} by {number(abs(difference.difference))} "
                f"[95 % CI {number(abs(low) if direction == 'higher' else -high)}–"
                f"{number(high if direction == 'higher' else -low)}], p = {number(difference.p_holm)} ({holm_note}): "
                f"{first if better else second} is better.")  # fmt: skip
    return (f"{first} and {second}: no significant difference in {what} at n = {n_first} and {n_second} "
            f"(difference {number(difference.difference)}, p = {number(difference.p_holm)}, {holm_note}).")  # fmt: skip


def interval_text(interval) -> str:
    return "–" if interval is None else f"{number(interval[0])} to {number(interval[1])}"


CSV_COLUMNS = ["metric", "kind", "arm", "against", "n", "mean", "sd", "se", "difference", "ci_low", "ci_high", "p",
               "p_holm", "step", "wall_s"]  # fmt: skip


def csv_row(**cells: Any) -> List[Any]:
    """One row of compare.csv from the cells it has, by column name; the others blank."""
    unknown = set(cells) - set(CSV_COLUMNS)
    assert not unknown, unknown
    return [cells.get(column, "") for column in CSV_COLUMNS]


def write(out: Path, arms, comparison: Dict[str, Any], own: Dict[str, Any]) -> List[List[Any]]:
    """compare.md, compare.csv and the plots; returns the CSV's rows."""
    lines = ["# Comparison", ""]
    lines += [
        f"Runs: {own['runs']}. Arms: {', '.join(f'`{arm.label}`' for arm in arms)}.",
        "",
        "Per arm: n, mean, standard deviation, standard error and a bootstrap (BCa) 95 % interval of the mean. Between "
        "two arms: the difference of means with a bootstrap (percentile) 95 % interval, each arm resampled on its "
        f"own, and {TEST_NAMES[comparison['test']].format(resamples=comparison['resamples'])}; p-values corrected for the pairs of each metric by Holm's method, significant "
        f"below {comparison['alpha']}. Resampling: {comparison['resamples']} resamples, seed {comparison['seed']}. "
        "Final values are under each run's final protocol, best values under its periodic protocol; values under "
        "different protocols are never pooled. Diverged, failed and interrupted runs have no final value: they are "
        "counted below and left out of the statistics.",
        "",
        "| arm | runs | completed | diverged | failed | interrupted |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arm in arms:
        left = arm.unfinished
        lines.append(f"| {arm.label} | {len(arm.runs)} | {len(arm.completed)} | {len(left.get('diverged', []))} | "
                     f"{len(left.get('failed', []))} | {len(left.get('interrupted', []))} |")  # fmt: skip
    left_out = [(arm.label, run) for arm in arms for runs in arm.unfinished.values() for run in runs]
    if left_out:
        lines += ["", "Left out of the statistics:", ""]
        lines += [f"- {label}: {run.path} ({run.status})" for label, run in left_out]
    rows = []
    for section in comparison["sections"]:
        title = f"## {section['metric']} ({'final value' if section['kind'] == 'final' else 'best periodic value'})"
        lines += ["", title, ""]
        if "refused" in section:
            lines.append(f"Not compared: {section['refused']}.")
            continue
        lines += [f"Protocol: {', '.join(f'{k}: {v}' for k, v in section['protocol'].items()) or 'not recorded'}.", ""]
        lines += ["| arm | n | mean | sd | se | 95 % CI |", "| --- | ---: | ---: | ---: | ---: | --- |"]
        for label, stats in section["stats"].items():
            sd = number(stats.std) if stats.std is not None else "–"
            se = number(stats.sem) if stats.sem is not None else "–"
            lines.append(
                f"| {label} | {stats.n} | {number(stats.mean)} | {sd} | {se} | {interval_text(stats.interval)} |"
            )
            low, high = stats.interval or ("", "")
            rows.append(csv_row(metric=section["metric"], kind=section["kind"], arm=label, n=stats.n, mean=stats.mean,
                                sd=stats.std, se=stats.sem, ci_low=low, ci_high=high))  # fmt: skip
        for label, count in section["nonfinite"].items():
            lines.append(f"\n{label}: {count} completed run(s) with a non-finite {section['metric']} left out.")
        if section["pairs"]:
            lines += [
                "",
                "| arm | against | difference | 95 % CI | p | p (Holm) |",
                "| --- | --- | ---: | --- | ---: | ---: |",
            ]
            for first, second, difference, _ in section["pairs"]:
                lines.append(f"| {first} | {second} | {number(difference.difference)} | {interval_text(difference.interval)} | "
                             f"{number(difference.p_value)} | {number(difference.p_holm)} |")  # fmt: skip
                low, high = difference.interval or ("", "")
                rows.append(csv_row(metric=section["metric"], kind=section["kind"], arm=first, against=second,
                                    difference=difference.difference, ci_low=low, ci_high=high, p=difference.p_value,
                                    p_holm=difference.p_holm))  # fmt: skip
        plot(out, section)
    if "budget" in comparison:
        lines += ["", "## Budget", "", "The completed runs as the trials of one search: the expected best final value "
                  "of k trials drawn from them (every subset of k alike, computed exactly), k = 1 to n.", ""]  # fmt: skip
        for metric, curve in comparison["budget"].items():
            lines += [f"| {metric}: trials | " + " | ".join(str(k) for k in range(1, len(curve) + 1)) + " |",
                      "| --- | " + " | ".join("---:" for _ in curve) + " |",
                      "| expected best | " + " | ".join(number(v) for v in curve) + " |", ""]  # fmt: skip
            rows += [csv_row(metric=metric, kind="budget", n=k, mean=value) for k, value in enumerate(curve, 1)]
            plot_budget(out, metric, curve)
    lines += curve_lines(out, comparison["curves"], rows)
    lines += ["", "## Findings", ""] + [f"- {text}" for text in comparison["sentences"]]
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    with open(out / "compare.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    return rows


def curve_lines(out: Path, metric_curves: Dict[str, Dict[str, list]], rows: List[List[Any]]) -> List[str]:
    """The curves section of compare.md (one picture per metric), their points appended to ``rows``."""
    from gan_lightning.results.curves import plot_arm_curves

    lines: List[str] = []
    for metric, arm_curves in metric_curves.items():
        if not arm_curves:
            continue
        if not lines:
            lines += ["", "## Against steps and wall time", "", "Each arm's mean over its completed runs at every step "
                      "they all evaluated, with the bootstrap 95 % interval of the mean; against wall time at the "
                      "runs' mean wall time of that step. A diamond: the last step under the final protocol, drawn "
                      "apart where its sample count differs from the periodic evaluations'.", ""]  # fmt: skip
        path = plot_arm_curves(out, metric, arm_curves)
        lines += [f"![{metric} against steps and wall time]({path.name})", ""]
        for label, points in arm_curves.items():
            for p in points:
                low, high = p.interval or ("", "")
                kind = "curve_final" if p.final else "curve"  # the final protocol's point, or a periodic one
                rows.append(csv_row(metric=metric, kind=kind, arm=label, n=p.n, mean=p.mean, ci_low=low, ci_high=high,
                                    step=p.step, wall_s="" if p.wall_s is None else p.wall_s))  # fmt: skip
    return lines


def plot_budget(out: Path, metric: str, curve: List[float]) -> None:
    plt = pyplot()

    figure, axes = plt.subplots(figsize=(5.0, 3.6))
    axes.plot(range(1, len(curve) + 1), curve, marker="o")
    axes.set_xlabel("trials")
    axes.set_ylabel(f"expected best {metric}")
    figure.tight_layout()
    figure.savefig(out / f"compare_budget_{metric.replace('/', '_')}.png", dpi=100)
    plt.close(figure)


def plot(out: Path, section: Dict[str, Any]) -> None:
    """Each arm's values (dots) with its mean and interval, one picture per metric and kind."""
    plt = pyplot()

    stats = section["stats"]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.6 * len(stats)), 3.6))
    for position, (label, arm) in enumerate(stats.items()):
        values = section["values"][label]
        axes.scatter([position + 0.15] * len(values), values, s=14, color="tab:blue", alpha=0.7)
        low, high = arm.interval or (arm.mean, arm.mean)
        axes.errorbar([position], [arm.mean], yerr=[[arm.mean - low], [high - arm.mean]], fmt="o", color="black",
                      capsize=6)  # fmt: skip
    axes.set_xticks(range(len(stats)), [label.replace(" ", "\n") for label in stats], fontsize=8)
    axes.set_ylabel(section["metric"])
    axes.set_title(f"{section['metric']} ({section['kind']}): runs, mean and 95 % interval per arm", fontsize=9)
    figure.tight_layout()
    figure.savefig(out / f"compare_{section['metric'].replace('/', '_')}_{section['kind']}.png", dpi=100)
    plt.close(figure)

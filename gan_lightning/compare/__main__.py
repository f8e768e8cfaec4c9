"""``python -m gan_lightning.compare runs=DIR[,DIR...]``: which arm of a study is better, by how much, and whether the
difference is real.

    python -m gan_lightning.compare runs=multirun/2026-12-06/14-02-11                 # arms: what differs but the seed
    python -m gan_lightning.compare runs=SWEEP_A,SWEEP_B arms=objective metrics=fid,precision out=DIR

Runs (run or sweep directories) are grouped into arms by the overrides that differ between them other than
``seed`` (``arms=KEY,KEY`` names them instead). For each sample-quality metric the runs measured, under one
protocol: per arm n, mean, standard deviation, standard error and a bootstrap 95 % interval of the mean; between
every two arms the difference of means with its bootstrap interval and a two-sided permutation test (or Welch's
t-test, ``test=welch``), the p-values corrected for the number of pairs (Holm), and a sentence saying what was found. The final values (the run's final
protocol) and the best periodic values are compared apart. Diverged, failed and interrupted runs are counted per
arm and left out of the statistics. Each arm's metric against the step and wall time, a band over its seeds, where
the runs evaluated it during training. Writes ``compare.md``, ``compare.csv`` and the plots (``compare_<metric>_*.png``)
into ``out`` (default: the one directory given, else .).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gan_lightning.commands import Command, Setting, boolean, main_guard, whole_number
from gan_lightning.errors import UserError

COMMAND = Command(
    "gan_lightning.compare",
    __doc__.strip(),
    [
        Setting("runs", "comma-separated run or sweep directories"),
        Setting(
            "arms", "comma-separated settings that make the arms; default: every override but seed that differs", ""
        ),
        Setting("metrics", "comma-separated metrics to compare; default: every sample-quality metric measured", ""),
        Setting("out", "where compare.md, compare.csv and the plots go; default: the one directory given, else .", ""),
        Setting("alpha", "the significance level of the corrected p-values", 0.05, float),
        Setting("resamples", "bootstrap and permutation resamples", 10_000, whole_number(1000)),
        Setting(
            "test",
            "the test of equal means between two arms: permutation (exact, no assumption; coarse with few runs) or "
            "welch (Welch's t-test: normal values, unequal variances)",
            "permutation",
        ),  # fmt: skip
        Setting("seed", "the seed of the resampling", 0, int),
        Setting(
            "budget",
            "the runs are the trials of one search: the expected best against the number of trials",
            False,
            boolean,
        ),  # fmt: skip
        Setting(
            "wandb",
            "the tables also as one W&B run (job type compare) in the sweep's group; offline without "
            "W&B credentials, like every run",
            True,
            boolean,
        ),  # fmt: skip
    ],
)


def main(argv=None) -> int:
    own, _ = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    if not 0 < own["alpha"] < 1:
        raise UserError(f"alpha={own['alpha']!r} is not allowed: a level between 0 and 1, such as 0.05.")
    from gan_lightning.results.statistics import TESTS

    if own["test"] not in TESTS:
        raise UserError(f"test={own['test']!r} is not allowed: {' or '.join(TESTS)}.")
    from gan_lightning.results.arms import group, measured_metrics, read_runs

    paths = [Path(p) for p in own["runs"].split(",") if p]
    runs = read_runs(paths)
    keys = [k for k in own["arms"].split(",") if k] or None
    arms = group(runs, keys)
    if not any(arm.completed for arm in arms):
        raise UserError(f"runs={own['runs']}: none of the {len(runs)} runs completed, so there is nothing to compare.")
    metrics = [m for m in own["metrics"].split(",") if m] or measured_metrics(arms)
    if not metrics:
        raise UserError("the completed runs measured no sample-quality metric (metrics=none): nothing to compare.")
    out = Path(own["out"]) if own["out"] else (paths[0] if len(paths) == 1 else Path("."))
    out.mkdir(parents=True, exist_ok=True)
    from gan_lightning.results.compare import CSV_COLUMNS, budget, compare, write

    comparison = compare(arms, metrics, own["alpha"], own["resamples"], own["seed"], own["test"])
    from gan_lightning.results.curves import curves

    comparison["curves"] = curves(arms, metrics, own["seed"], own["resamples"])
    if own["budget"]:
        comparison["budget"] = budget([run for arm in arms for run in arm.completed], metrics)
    rows = write(out, arms, comparison, own)
    if own["wandb"]:
        from gan_lightning.tracking.sweep_tables import log_comparison

        log_comparison(out, paths[0], CSV_COLUMNS, rows, comparison["sentences"])
    for line in comparison["sentences"]:
        print(line)
    print(f"{len(runs)} runs in {len(arms)} arms: {out / 'compare.md'}, {out / 'compare.csv'}")
    return 0


if __name__ == "__main__":
    main_guard(main)

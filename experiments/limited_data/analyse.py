"""Tables and figures of the limited_data sweep, through ``python -m gan_lightning.compare``.

    python experiments/limited_data/analyse.py SWEEP_DIR [OUT_DIR]

For each training-set size, compares the augmentations (``compare runs=<that size's jobs> arms=augment
metrics=fid test=welch``: with three seeds per cell no exact permutation test can give p below 0.1) into
OUT_DIR/compare_<size>/ (compare.md with every pair's test, compare.csv, the plots), then writes into OUT_DIR
(default: this folder) results.csv (one row per run), table.md (per size and augmentation: FID with its interval,
D's final held-out gap, r_t and ADA's p; then the pairs and whether they differ) and health.png (d/r_t and the
held-out gap against the step on 1 000 images, each augmentation's mean over its seeds).
``python analyse.py --tables OUT_DIR`` prints table.md again from the committed compare.csv files and results.csv.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path
from typing import Dict, List

from gan_lightning.results.runs import find_runs, read_series
from gan_lightning.runs.summary import read_summary

SIZES = ("1000", "5000", "null")  # data.subset; null: all 60 000 images
SIZE_NAMES = {"1000": "1 000", "5000": "5 000", "null": "60 000 (all)"}
HEALTH = ("d/heldout_gap", "d/r_t", "augment/p")


def sizes(runs: List[Dict]) -> List[str]:
    """The training-set sizes the sweep has runs of, in SIZES' order."""
    return [size for size in SIZES if any(r["subset"] == size for r in runs)]


def last(series: Dict[str, list], key: str):
    return round(series[key][-1][1], 4) if series.get(key) else None


def results(sweep: Path) -> List[Dict]:
    """One row per run: its cell, seed, status, wall time, final FID and D's final health."""
    rows = []
    for job in find_runs(sweep):
        summary = read_summary(job)
        overrides = dict(o.split("=", 1) for o in summary["overrides"] if "=" in o)
        series = read_series(job / "csv" / "metrics.csv")
        metrics = summary["metrics"]
        rows.append({"job": job.name, "subset": overrides["data.subset"], "augment": overrides["augment"],
                     "seed": overrides["seed"], "status": summary["status"], "wall_time_s": summary.get("wall_time_s"),
                     **{m: round(float(metrics[m]), 4) if m in metrics else None for m in ("fid", "precision", "recall")},
                     **{key: last(series, key) for key in HEALTH}})  # fmt: skip
    return rows


def mean(values) -> str:
    values = [v for v in values if v not in (None, "")]
    return f"{statistics.fmean(float(v) for v in values):.3f}" if values else "–"


def tables(out: Path, runs: List[Dict]) -> str:
    lines = ["| training images | augment | runs | FID, mean ± se | 95 % CI | held-out gap | r_t | ADA's p |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]  # fmt: skip
    pairs = ["| training images | lower FID | higher FID | difference | 95 % CI | p (Holm, 3 pairs) | significant |",
             "| --- | --- | --- | ---: | --- | ---: | --- |"]  # fmt: skip
    for size in sizes(runs):
        with open(out / f"compare_{size}" / "compare.csv", newline="") as f:
            final = [row for row in csv.DictReader(f) if row["kind"] == "final" and row["metric"] == "fid"]
        for row in (row for row in final if not row["against"]):
            augment = row["arm"].removeprefix("augment=")
            cell = [r for r in runs if r["subset"] == size and r["augment"] == augment]
            lines.append(f"| {SIZE_NAMES[size]} | {augment} | {row['n']} | {float(row['mean']):.1f} ± {float(row['se']):.1f} | "
                         f"{float(row['ci_low']):.1f} to {float(row['ci_high']):.1f} | {mean(r['d/heldout_gap'] for r in cell)} | "
                         f"{mean(r['d/r_t'] for r in cell)} | {mean(r['augment/p'] for r in cell)} |")  # fmt: skip
        for row in sorted((row for row in final if row["against"]), key=lambda r: float(r["p_holm"])):
            difference, low, high = float(row["difference"]), float(row["ci_low"]), float(row["ci_high"])
            first, second = row["arm"].removeprefix("augment="), row["against"].removeprefix("augment=")
            if difference > 0:  # written as lower against higher
                first, second, difference, low, high = second, first, -difference, -high, -low
            p_holm = float(row["p_holm"])
            pairs.append(f"| {SIZE_NAMES[size]} | {first} | {second} | {-difference:.1f} | {-high:.1f} to {-low:.1f} | "
                         f"{p_holm:.3g} | {'yes' if p_holm < 0.05 else 'no'} |")  # fmt: skip
    return "\n".join([*lines, "", *pairs])


def health_figure(sweep: Path, runs: List[Dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=90)
    for index, augment in enumerate(("none", "diffaug", "ada_short")):
        jobs = [
            r["job"] for r in runs if r["subset"] == "1000" and r["augment"] == augment and r["status"] == "completed"
        ]
        logs = [read_series(sweep / job / "csv" / "metrics.csv") for job in jobs]  # each run's log read once
        for ax, key in zip(axes, ("d/r_t", "d/heldout_gap", "metrics/fid")):
            per_run = [dict(log.get(key, [])) for log in logs]
            steps = sorted(set.intersection(*(set(s) for s in per_run))) if per_run else []
            if steps:
                ax.plot(steps, [statistics.fmean(s[step] for s in per_run) for step in steps], color=f"C{index}",
                        label=f"{augment} ({len(per_run)} seeds)")  # fmt: skip
            ax.set_title(f"{key} on 1 000 images, mean over seeds", fontsize=9)
            ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "health.png")
    plt.close(fig)


def main(sweep: Path, out: Path) -> None:
    from gan_lightning.compare.__main__ import main as compare

    out.mkdir(parents=True, exist_ok=True)
    runs = results(sweep)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    for size in sizes(runs):
        jobs = ",".join(str(sweep / r["job"]) for r in runs if r["subset"] == size)
        compare([f"runs={jobs}", "arms=augment", "metrics=fid", "test=welch", f"out={out / f'compare_{size}'}",
                 "wandb=false"])  # fmt: skip
    text = tables(out, runs)
    (out / "table.md").write_text(text + "\n")
    print(text)
    health_figure(sweep, runs, out)


def read_results(out: Path) -> List[Dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    if sys.argv[1:2] == ["--tables"]:
        folder = Path(sys.argv[2]) if len(sys.argv) > 2 else here
        print(tables(folder, read_results(folder)))
    elif len(sys.argv) in (2, 3):
        main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else here)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

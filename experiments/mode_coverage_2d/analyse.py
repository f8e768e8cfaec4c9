"""Tables and figures of the mode_coverage_2d sweeps, beside PacGAN's Table 1.

    python experiments/mode_coverage_2d/analyse.py SWEEP_DIR [SWEEP_DIR ...] [--out OUT_DIR] [--arm NAME]

Reads every job's summary.json (final modes, hq_fraction, reverse_kl with 2 500 samples) and
csv/metrics.csv (the same every metrics.every_n_steps) and writes into OUT_DIR (default: this folder)
results.csv (one row per run), table.md (mean ± standard error per data set and arm, with the steps each
run trained, the longest wall time of a run or vectorized group, and the machines they ran on) and
scatter.png (the last samples of seed 0 of every arm) and progress.png (metrics against the step).
With --arm NAME every run is that arm (a preset whose settings are not in the runs' overrides).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional

from gan_lightning.results.runs import find_runs, measured_on, read_series
from gan_lightning.results.statistics import mean_and_error
from gan_lightning.runs.summary import read_summary

# Lin et al. 2018, Table 1: mean ± standard error over 10 runs (modes, high-quality %, reverse KL).
PAPER = {
    ("ring8", "GAN"): ("6.3 ± 0.5", "98.2 ± 0.2", "0.45 ± 0.09"),
    ("ring8", "PacGAN2"): ("7.9 ± 0.1", "95.6 ± 2.0", "0.07 ± 0.03"),
    ("grid25", "GAN"): ("17.3 ± 0.8", "94.8 ± 0.7", "0.70 ± 0.07"),
    ("grid25", "PacGAN2"): ("23.8 ± 0.7", "91.3 ± 0.8", "0.13 ± 0.04"),
    # experiment=mode_coverage_recipe: the best published mean of each column, over PacGAN's Table 1 (GAN, ALI,
    # PacGAN2-4) and VEEGAN's (Unrolled GAN, VEEGAN), and the row it comes from.
    ("ring8", "recipe"): ("8.0 (VEEGAN)", "98.2 (GAN)", "0.07 (PacGAN2)"),
    ("grid25", "recipe"): ("24.8 (PacGAN4)", "95.7 (ALI)", "0.04 (PacGAN4)"),
}
ARMS = ["GAN", "GAN, simultaneous", "PacGAN2", "minimax", "wgan_gp", "hinge", "least_squares", "relativistic", "recipe"]
COLOURS = {"GAN": "tab:orange", "PacGAN2": "tab:blue", "recipe": "tab:green"}  # progress.png's arms


def arm(settings: Dict[str, str]) -> str:
    objective, pack = settings.get("objective", "nonsaturating"), int(settings.get("model.pack", 1))
    if objective == "nonsaturating":
        name = "GAN" if pack == 1 else f"PacGAN{pack}"
    else:
        name = objective if pack == 1 else f"{objective}, pack {pack}"
    return name + (", simultaneous" if settings.get("trainer.updates") == "simultaneous" else "")


def read_runs(sweeps: List[Path], arm_name: Optional[str] = None) -> List[dict]:
    runs = []
    for sweep in sweeps:
        for job in find_runs(sweep):
            summary = read_summary(job)
            settings = dict(o.split("=", 1) for o in summary["overrides"] if "=" in o)
            metrics = summary["metrics"]
            runs.append({
                "sweep": sweep.name, "job": job.name, "data": settings.get("data", "ring8"), "arm": arm_name or arm(settings),
                "seed": int(settings.get("seed", 0)), "status": summary["status"], "steps": summary["global_step"],
                "wall_time_s": summary["wall_time_s"], "group_size": summary.get("group_size"), "modes": metrics.get("modes"),
                "hq_percent": None if metrics.get("hq_fraction") is None else 100 * metrics["hq_fraction"],
                "reverse_kl": float(metrics["reverse_kl"]) if metrics.get("reverse_kl") is not None else None,
                "folder": job, "summary": summary,
            })  # fmt: skip
    return runs


def mean_se(values: List[float], digits: int) -> str:
    missing = sum(v is None or not math.isfinite(v) for v in values)
    note = f" (without the {missing} run(s) that have no high-quality sample)" if 0 < missing < len(values) else ""
    return mean_and_error(values, digits) + note


def table(runs: List[dict]) -> str:
    lines = ["| data | arm | runs | steps | modes | high quality (%) | reverse KL | wall time (min) | published: modes | published: high quality (%) | published: reverse KL |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for data in ("ring8", "grid25"):
        for name in ARMS + sorted({r["arm"] for r in runs} - set(ARMS)):
            group = [r for r in runs if r["data"] == data and r["arm"] == name and r["status"] == "completed"]
            if not group:
                continue
            paper = PAPER.get((data, name), ("", "", ""))
            steps = sorted({r["steps"] for r in group})
            budget = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}–{steps[-1]}"
            lines.append(f"| {data} | {name} | {len(group)} | {budget} | {mean_se([r['modes'] for r in group], 1)} | "
                         f"{mean_se([r['hq_percent'] for r in group], 1)} | {mean_se([r['reverse_kl'] for r in group], 3)} | "
                         f"{max(r['wall_time_s'] for r in group) / 60:.1f} | {paper[0]} | {paper[1]} | {paper[2]} |")  # fmt: skip
    recorded = [r["summary"] for r in runs if "machine" in r["summary"]]  # older runs did not record theirs
    return "\n".join(lines + (["", measured_on(recorded)] if recorded else []))


def series(folder: Path, key: str):
    """(training steps done, value), as the CSV log counts them."""
    return read_series(folder / "csv" / "metrics.csv").get(key, [])


METRICS = (("modes", "modes", False), ("hq_percent", "high quality (%)", False), ("reverse_kl", "reverse KL", True))


def significance(rows: List[dict]) -> str:
    """GAN against PacGAN2 on each data set: the difference of means of each metric with its bootstrap 95 % interval
    and a two-sided permutation test, Holm-corrected over the three metrics (gan_lightning.compare's statistics)."""
    from gan_lightning.results.statistics import difference_of_means, holm

    lines = ["| data | metric | PacGAN2 − GAN | 95 % CI | p | p (Holm, 3 metrics) | finding |",
             "| --- | --- | ---: | --- | ---: | ---: | --- |"]  # fmt: skip
    for data in ("ring8", "grid25"):
        arms = {name: [r for r in rows if r["data"] == data and r["arm"] == name and r["status"] == "completed"]
                for name in ("GAN", "PacGAN2")}  # fmt: skip
        if not all(arms.values()):
            continue
        found = []
        for key, label, lower_is_better in METRICS:
            values = {name: [float(r[key]) for r in runs if r[key] not in (None, "") and math.isfinite(float(r[key]))]
                      for name, runs in arms.items()}  # fmt: skip
            found.append(
                (label, lower_is_better, values, difference_of_means(values["PacGAN2"], values["GAN"], seed=0))
            )
        for (label, lower_is_better, values, result), corrected in zip(found, holm([f[3].p_value for f in found])):
            better = "PacGAN2" if (result.difference < 0) == lower_is_better else "GAN"
            finding = (
                f"{better} better"
                if corrected < 0.05
                else f"no significant difference (n = {len(values['GAN'])}, {len(values['PacGAN2'])})"
            )
            low, high = result.interval
            lines.append(f"| {data} | {label} | {result.difference:.3g} | {low:.3g} to {high:.3g} | {result.p_value:.3g} | "
                         f"{corrected:.3g} | {finding} |")  # fmt: skip
    return "\n".join(lines)


def main(sweeps: List[Path], out: Path, arm_name: Optional[str] = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = read_runs(sweeps, arm_name)
    out.mkdir(parents=True, exist_ok=True)
    fields = [k for k in runs[0] if k not in ("folder", "summary")]
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in runs:
            writer.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k in fields})
    text = table(runs)
    (out / "table.md").write_text(text + "\n")
    print(text)

    arms = [a for a in ARMS if any(r["arm"] == a for r in runs)]
    datasets = [d for d in ("ring8", "grid25") if any(r["data"] == d for r in runs)]
    fig, axes = plt.subplots(
        len(datasets), len(arms), figsize=(2.2 * len(arms), 2.3 * len(datasets)), dpi=80, squeeze=False
    )
    for row, data in zip(axes, datasets):
        for ax, name in zip(row, arms):
            ax.axis("off")
            chosen = [r for r in runs if r["data"] == data and r["arm"] == name and r["seed"] == 0]
            if chosen and (chosen[0]["folder"] / "samples" / "last.png").is_file():
                ax.imshow(plt.imread(chosen[0]["folder"] / "samples" / "last.png"))
                ax.set_title(f"{data}: {name}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "scatter.png")
    plt.close(fig)

    fig, axes = plt.subplots(len(datasets), 3, figsize=(12, 3 * len(datasets)), dpi=80, squeeze=False)
    for row, data in zip(axes, datasets):
        for ax, (key, label) in zip(
            row,
            (
                ("metrics/modes", "modes"),
                ("metrics/hq_fraction", "high-quality fraction"),
                ("metrics/reverse_kl", "reverse KL"),
            ),
        ):
            for name, colour in COLOURS.items():
                for i, r in enumerate(r for r in runs if r["data"] == data and r["arm"] == name):
                    points = [(s, v) for s, v in series(r["folder"], key) if math.isfinite(v)]
                    if points:
                        ax.plot(
                            *zip(*points),
                            color=colour,
                            alpha=0.5,
                            marker="o",
                            markersize=2,
                            label=name if i == 0 else None,
                        )
            ax.set_title(f"{data}: {label}", fontsize=9)
            ax.set_xlabel("step")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(out / "progress.png")
    plt.close(fig)


if __name__ == "__main__":
    args = sys.argv[1:]
    out = Path(__file__).resolve().parent
    options = {}
    if args[:1] == ["--significance"]:  # from a results.csv this script wrote: python analyse.py --significance CSV
        with open(args[1], newline="") as f:
            print(significance(list(csv.DictReader(f))))
        sys.exit(0)
    for option in ("--out", "--arm"):
        if option in args:
            i = args.index(option)
            options[option], args = args[i + 1], args[:i] + args[i + 2 :]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main([Path(a) for a in args], Path(options.get("--out", out)), options.get("--arm"))

"""Tables and a figure of the objectives_fashion_mnist sweep.

    python experiments/objectives_fashion_mnist/analyse.py SWEEP_DIR [OUT_DIR]

Reads every job's summary.json and writes into OUT_DIR (default: this folder) results.csv (one row per
run), table.md (per objective: best FID, mean ± standard error over all runs, per learning rate, beside
Lucic et al. 2018), fid.png (every run's FID by objective and learning rate) and samples.png (the last
sample grid of each objective's best run).
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from omegaconf import OmegaConf

from gan_lightning.report import find_runs, mean_and_error
from gan_lightning.runs.summary import read_summary

OBJECTIVES = ["minimax", "nonsaturating", "least_squares", "wasserstein", "wgan_gp", "hinge"]
# Lucic et al. 2018, Fashion-MNIST, best Inception FID (mean ± std of the best models' scores); no hinge.
PAPER = {
    "minimax": "29.6 ± 1.6",
    "nonsaturating": "26.5 ± 1.6",
    "least_squares": "30.7 ± 2.2",
    "wasserstein": "21.5 ± 1.6",
    "wgan_gp": "24.5 ± 2.1",
    "hinge": "–",
}
METRICS = ("fid", "kid_mean", "is_mean", "precision", "recall")


def read_runs(sweep: Path):
    runs = []
    for job in find_runs(sweep):
        summary = read_summary(job)
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        choices = OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.runtime.choices
        metrics = summary["metrics"]
        runs.append({
            "folder": job, "job": job.name, "objective": choices.objective, "lr": float(config.optimizer.g.lr), "seed": int(config.seed),
            "status": summary["status"], "steps": summary["global_step"], "wall_time_s": summary["wall_time_s"],
            **{m: (round(float(metrics[m]), 4) if m in metrics else None) for m in METRICS},
        })  # fmt: skip
    return runs


def main(sweep: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = read_runs(sweep)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[key for key in runs[0] if key != "folder"])
        writer.writeheader()
        writer.writerows({key: value for key, value in r.items() if key != "folder"} for r in runs)
    rates = sorted({r["lr"] for r in runs})
    header = [
        "objective",
        "best FID",
        "mean FID, all runs",
        *[f"mean FID, lr {lr:g}" for lr in rates],
        "best run's precision / recall",
        "Lucic et al.: best FID (Inception)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    order = sorted(
        OBJECTIVES,
        key=lambda o: min((r["fid"] for r in runs if r["objective"] == o and r["fid"] is not None), default=math.inf),
    )
    for objective in order:
        group = [r for r in runs if r["objective"] == objective and r["fid"] is not None]
        if not group:
            continue
        best = min(group, key=lambda r: r["fid"])
        per_lr = [mean_and_error([r["fid"] for r in group if r["lr"] == lr], 1) for lr in rates]
        failed = sum(1 for r in runs if r["objective"] == objective and r["status"] != "completed")
        name = objective + (f" ({failed} run(s) not completed)" if failed else "")
        lines.append(f"| {name} | {best['fid']:.1f} (lr {best['lr']:g}) | {mean_and_error([r['fid'] for r in group], 1)} | " + " | ".join(per_lr)
                     + f" | {best['precision']:.2f} / {best['recall']:.2f} | {PAPER[objective]} |")  # fmt: skip
    text = "\n".join(lines)
    (out / "table.md").write_text(text + "\n")
    print(text)

    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=90)
    markers = {lr: m for lr, m in zip(rates, "os^D")}
    for i, objective in enumerate(order):
        for r in runs:
            if r["objective"] == objective and r["fid"] is not None:
                ax.scatter(i + (rates.index(r["lr"]) - (len(rates) - 1) / 2) * 0.15, r["fid"], marker=markers[r["lr"]], color=f"C{rates.index(r['lr'])}",
                           label=f"lr {r['lr']:g}" if objective == order[0] and r["seed"] == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(order)), order, rotation=20)
    ax.set_ylabel("FID (domain features)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Fashion-MNIST, DCGAN, 2 000 steps: FID of every run", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "fid.png")
    plt.close(fig)

    best_runs = [
        min((r for r in runs if r["objective"] == o and r["fid"] is not None), key=lambda r: r["fid"]) for o in order
    ]
    fig, axes = plt.subplots(1, len(best_runs), figsize=(2.3 * len(best_runs), 2.9), dpi=80, squeeze=False)
    for ax, r in zip(axes[0], best_runs):
        ax.imshow(plt.imread(r["folder"] / "samples" / "last.png"))
        ax.set_title(f"{r['objective']}\nFID {r['fid']:.0f}, lr {r['lr']:g}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "samples.png")
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent)

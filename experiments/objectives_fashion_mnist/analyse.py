"""Tables and figures of the objectives_fashion_mnist sweep, through ``python -m gan_lightning.compare``.

    python experiments/objectives_fashion_mnist/analyse.py SWEEP_DIR [OUT_DIR]

Runs the comparison of the objectives (``compare runs=SWEEP_DIR arms=objective metrics=fid,precision,recall
test=welch``: with five seeds per objective and fifteen pairs, an exact permutation test cannot reach 0.05 after
Holm's correction, whatever the data, while Welch's t-test can) into
OUT_DIR/compare (compare.md with every pair's test and finding, compare.csv, the plots), then writes into OUT_DIR
(default: this folder) results.csv (one row per run), table.md (per objective: FID with its interval and the
significant differences, beside Lucic et al. 2018) and samples.png (the last sample grid of each objective's best
run). ``python analyse.py --tables OUT_DIR`` prints table.md again from the committed compare.csv.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Dict, List

from gan_lightning.results.runs import find_runs
from gan_lightning.runs.summary import read_summary

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
COMPARED = "fid,precision,recall"


def results(sweep: Path) -> List[Dict]:
    """One row per run: its objective, seed, status, steps, wall time and final metrics."""
    rows = []
    for job in find_runs(sweep):
        summary = read_summary(job)
        overrides = dict(o.split("=", 1) for o in summary["overrides"] if "=" in o)
        metrics = summary["metrics"]
        rows.append({"job": job.name, "objective": summary["choices"]["objective"], "lr": overrides.get("optimizer.g.lr"),
                     "seed": overrides.get("seed"), "status": summary["status"], "steps": summary["global_step"],
                     "wall_time_s": summary["wall_time_s"],
                     **{m: (round(float(metrics[m]), 4) if m in metrics else None) for m in METRICS}})  # fmt: skip
    return rows


def objective(arm: str) -> str:
    return arm.removeprefix("objective=")


def tables(compared: List[Dict[str, str]]) -> str:
    """table.md from compare.csv's rows: the objectives by mean FID, each with n, mean ± standard error, the
    bootstrap 95 % interval, precision and recall; then every pair whose FID differs significantly (Holm)."""
    final = [row for row in compared if row["kind"] == "final"]
    arms = {(row["metric"], row["arm"]): row for row in final if not row["against"]}
    order = sorted({row["arm"] for row in final}, key=lambda arm: float(arms[("fid", arm)]["mean"]))
    lines = ["| objective | runs | FID, mean ± se | 95 % CI | precision | recall | Lucic et al.: best FID (Inception) |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: |"]  # fmt: skip
    for arm in order:
        fid = arms[("fid", arm)]
        precision, recall = (float(arms[(m, arm)]["mean"]) for m in ("precision", "recall"))
        se = f" ± {float(fid['se']):.1f}" if fid["se"] else ""
        interval = f"{float(fid['ci_low']):.1f} to {float(fid['ci_high']):.1f}" if fid["ci_low"] else "–"
        lines.append(f"| {objective(arm)} | {fid['n']} | {float(fid['mean']):.1f}{se} | {interval} | {precision:.2f} | "
                     f"{recall:.2f} | {PAPER[objective(arm)]} |")  # fmt: skip
    pairs = [row for row in final if row["metric"] == "fid" and row["against"]]
    lines += ["", f"FID, every two objectives ({len(pairs)} pairs, Welch's t-tests with Holm's correction):", "",
              "| lower FID | higher FID | difference | 95 % CI | p (Holm) | significant at 0.05 |",
              "| --- | --- | ---: | --- | ---: | --- |"]  # fmt: skip
    for row in sorted(pairs, key=lambda r: float(r["p_holm"])):
        difference, low, high = float(row["difference"]), float(row["ci_low"]), float(row["ci_high"])
        first, second = objective(row["arm"]), objective(row["against"])
        if difference > 0:  # written as lower against higher
            first, second, difference, low, high = second, first, -difference, -high, -low
        p_holm = float(row["p_holm"])
        lines.append(f"| {first} | {second} | {-difference:.1f} | {-high:.1f} to {-low:.1f} | {p_holm:.3g} | "
                     f"{'yes' if p_holm < 0.05 else 'no'} |")  # fmt: skip
    return "\n".join(lines)


def read_compared(out: Path) -> List[Dict[str, str]]:
    with open(out / "compare" / "compare.csv", newline="") as f:
        return list(csv.DictReader(f))


def main(sweep: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_lightning.compare.__main__ import main as compare

    out.mkdir(parents=True, exist_ok=True)
    compare([f"runs={sweep}", "arms=objective", f"metrics={COMPARED}", "test=welch", f"out={out / 'compare'}",
             "wandb=false"])  # fmt: skip
    runs = results(sweep)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    text = tables(read_compared(out))
    (out / "table.md").write_text(text + "\n")
    print(text)

    scored = [r for r in runs if r["fid"] is not None]
    order = sorted({r["objective"] for r in scored}, key=lambda o: min(r["fid"] for r in scored if r["objective"] == o))
    best_runs = [min((r for r in scored if r["objective"] == o), key=lambda r: r["fid"]) for o in order]
    fig, axes = plt.subplots(1, len(best_runs), figsize=(2.3 * len(best_runs), 2.9), dpi=80, squeeze=False)
    for ax, r in zip(axes[0], best_runs):
        ax.imshow(plt.imread(sweep / r["job"] / "samples" / "last.png"))
        ax.set_title(f"{r['objective']}\nFID {r['fid']:.0f}, seed {r['seed']}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "samples.png")
    plt.close(fig)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    if sys.argv[1:2] == ["--tables"]:
        print(tables(read_compared(Path(sys.argv[2]) if len(sys.argv) > 2 else here)))
    elif len(sys.argv) in (2, 3):
        main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else here)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

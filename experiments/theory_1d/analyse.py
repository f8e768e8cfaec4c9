"""Frames of D(x) against D* = p_data / (p_data + p_g) from a theory_1d sweep.

    python experiments/theory_1d/analyse.py SWEEP_DIR [OUT_DIR]

Reads every job's samples/step_<N>.csv (written by the sample callback on 1-D data) and writes into
OUT_DIR (default: this folder) results.csv (one row per run), frames.csv (one row per run and frame),
figure1.png (p_data, p_g, D and D* at four steps, as in Goodfellow et al. 2014, Figure 1) and
d_error.png (max |D − D*| against the step). p_g is the kernel estimate of the frame's 5 000 samples.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from gan_lightning.results.runs import find_runs
from gan_lightning.runs.summary import read_summary

PANELS = (25, 150, 300, 1500)  # steps shown in figure1.png: (a)-(d)
INTERMEDIATE = (50, 500)  # frames where G is still moving: D is compared with D* here
SUPPORT = 0.1  # compare D with D* where (p_data + p_g) / 2 is at least this share of its peak


def frame_numbers(curve: np.ndarray, mean: float, std: float) -> dict:
    mixture = (curve["p_data"] + curve["p_g_kde"]) / 2
    optimal = curve["p_data"] / np.maximum(curve["p_data"] + curve["p_g_kde"], 1e-300)
    support = mixture >= SUPPORT * mixture.max()
    central = np.abs(curve["x"] - mean) <= 2 * std
    weights = curve["p_g_kde"] / curve["p_g_kde"].sum()
    g_mean = float((weights * curve["x"]).sum())
    return {
        "max_abs_d_minus_dstar": float(np.abs(curve["d"] - optimal)[support].max()),
        # The same error weighted by where the samples are, (p_data + p_g) / 2: less sensitive to the tails.
        "weighted_abs_d_minus_dstar": float((np.abs(curve["d"] - optimal) * mixture).sum() / mixture.sum()),
        "mean_abs_d_minus_half_central": float(np.abs(curve["d"] - 0.5)[central].mean()),
        "mean_abs_dstar_minus_half_central": float(np.abs(optimal - 0.5)[central].mean()),
        "g_mean": g_mean,
        "g_std": float(np.sqrt((weights * (curve["x"] - g_mean) ** 2).sum())),
    }


def read_runs(sweep: Path):
    for job in find_runs(sweep):
        summary = read_summary(job)
        settings = dict(o.split("=", 1) for o in summary["overrides"])
        config = (job / ".hydra" / "config.yaml").read_text() if (job / ".hydra" / "config.yaml").is_file() else ""
        mean = float(
            next((line.split(":")[1] for line in config.splitlines() if line.strip().startswith("mean:")), 2.0)
        )
        std = float(next((line.split(":")[1] for line in config.splitlines() if line.strip().startswith("std:")), 0.5))
        frames = {
            int(f.stem.split("_")[1]): np.genfromtxt(f, delimiter=",", names=True)
            for f in sorted((job / "samples").glob("step_*.csv"))
        }
        yield job.name, int(settings["trainer.d_steps"]), int(settings["seed"]), summary, frames, mean, std


def main(sweep: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(read_runs(sweep))
    rows, frame_rows = [], []
    for name, k, seed, summary, frames, mean, std in runs:
        numbers = {step: frame_numbers(curve, mean, std) for step, curve in frames.items()}
        for step, n in numbers.items():
            frame_rows.append(
                {"run": name, "d_steps": k, "seed": seed, "step": step, **{key: round(v, 4) for key, v in n.items()}}
            )
        last = numbers[max(numbers)]
        middle = [n for s, n in numbers.items() if INTERMEDIATE[0] <= s <= INTERMEDIATE[1]]
        rows.append({
            "run": name, "d_steps": k, "seed": seed, "steps": summary["global_step"], "wall_time_s": summary["wall_time_s"],
            "mean_max_abs_d_minus_dstar_steps_50_500": round(float(np.mean([n["max_abs_d_minus_dstar"] for n in middle])), 4),
            "mean_weighted_abs_d_minus_dstar_steps_50_500": round(float(np.mean([n["weighted_abs_d_minus_dstar"] for n in middle])), 4),
            **{f"max_abs_d_minus_dstar_step_{s}": round(numbers[s]["max_abs_d_minus_dstar"], 4) for s in PANELS if s in numbers},
            "final_mean_abs_d_minus_half_central": round(last["mean_abs_d_minus_half_central"], 4),
            "final_mean_abs_dstar_minus_half_central": round(last["mean_abs_dstar_minus_half_central"], 4),
            "final_g_mean": round(last["g_mean"], 3), "final_g_std": round(last["g_std"], 3),
        })  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for filename, table in (("results.csv", rows), ("frames.csv", frame_rows)):
        with open(out / filename, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)

    # Figure 1: seed 0, one row per number of D updates per G update.
    chosen = [r for r in runs if r[2] == 0]
    fig, axes = plt.subplots(
        len(chosen), len(PANELS), figsize=(3.2 * len(PANELS), 2.7 * len(chosen)), dpi=90, squeeze=False
    )
    for row, (_name, k, _seed, _, frames, _mean, _std) in zip(axes, chosen):
        for ax, step, letter in zip(row, PANELS, "abcd"):
            c = frames[step]
            optimal = c["p_data"] / np.maximum(c["p_data"] + c["p_g_kde"], 1e-300)
            optimal[(c["p_data"] + c["p_g_kde"]) < 0.01 * (c["p_data"] + c["p_g_kde"]).max()] = (
                np.nan
            )  # 0/0 in the far tails
            ax.plot(c["x"], c["p_data"], color="black", label="p_data")
            ax.plot(c["x"], c["p_g_kde"], color="tab:green", label="p_g")
            ax.plot(c["x"], c["d"], color="tab:blue", linestyle="--", label="D(x)")
            ax.plot(c["x"], optimal, color="tab:red", linestyle=":", label="D* = p_data/(p_data+p_g)")
            ax.set_ylim(0, 1.25)
            ax.set_title(f"({letter}) k={k}, step {step}", fontsize=9)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "figure1.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    for _name, k, seed, _, frames, mean, std in runs:
        steps = sorted(frames)
        errors = [frame_numbers(frames[s], mean, std)["max_abs_d_minus_dstar"] for s in steps]
        ax.plot(
            steps,
            errors,
            color="tab:orange" if k == 1 else "tab:blue",
            alpha=0.8,
            label=f"k={k}" if seed == 0 else None,
        )
    ax.set_xlabel("training step")
    ax.set_ylabel("max |D − D*| on the support")
    ax.set_xscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "d_error.png")
    plt.close(fig)
    for r in rows:
        print(r)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent)

"""Tables and the figure of the search_pruning study, from its six searches' studies.

    python experiments/search_pruning/analyse.py [MULTIRUN_DIR] [OUT_DIR]

Reads the study of every search in MULTIRUN_DIR (default multirun/search_pruning: full_<seed> and pruned_<seed>, as
run.sh leaves them) and writes into OUT_DIR (default: this folder) trials.csv (one row per trial: its state, FID,
training steps, wall time and parameters), table.md (per search and per arm, with compare's intervals and Welch's
test) and progress.png (the best FID so far against the training steps all trials spent, and against wall time).
``python analyse.py --tables`` prints table.md again from the committed trials.csv.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ARMS = ("full", "pruned")
ARM_NAMES = {"full": "without pruning", "pruned": "successive halving"}
COLUMNS = ["arm", "seed", "trial", "state", "fid", "steps", "wall_s", "ended_s", "params"]


def collect(multirun: Path) -> List[Dict]:
    """Every trial of every search, as the study and its run's summary record it."""
    import optuna

    from gan_lightning.sweeps.search.report import trial_rows

    rows = []
    for folder in sorted(multirun.glob("*_*")):
        arm, _, seed = folder.name.partition("_")
        if arm not in ARMS or not (folder / "study.db").is_file():
            continue
        study = optuna.load_study(study_name="dcgan_fashion_mnist", storage=f"sqlite:///{folder / 'study.db'}")
        for row in trial_rows(study, folder):
            rows.append({"arm": arm, "seed": int(seed), "trial": row.number, "state": row.state,
                         "fid": round(row.value, 3) if isinstance(row.value, float) else "", "steps": row.steps,
                         "wall_s": round(row.wall_s, 1), "ended_s": round(row.ended or 0.0, 1),
                         "params": " ".join(f"{k}={v}" for k, v in row.params.items())})  # fmt: skip
    return rows


def read_trials(folder: Path = HERE) -> List[Dict]:
    with open(folder / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["seed"], row["trial"], row["steps"] = int(row["seed"]), int(row["trial"]), int(row["steps"])
        row["fid"] = float(row["fid"]) if row["fid"] else None
        row["wall_s"], row["ended_s"] = float(row["wall_s"]), float(row["ended_s"])
    return rows


def curve(trials: List[Dict]) -> List[Tuple[int, float, Optional[float]]]:
    """(training steps spent, wall time, best FID of a completed trial so far) after each trial, in the order they
    ended; a pruned trial's steps count, its FID (measured early, on fewer samples) does not compete."""
    points, steps, best = [], 0, None
    for trial in sorted(trials, key=lambda t: t["ended_s"]):
        steps += trial["steps"]
        if trial["state"] == "complete" and trial["fid"] is not None:
            best = trial["fid"] if best is None else min(best, trial["fid"])
        points.append((steps, trial["ended_s"], best))
    return points


def searches(rows: List[Dict]) -> Dict[Tuple[str, int], Dict]:
    """Per search: its trials by state, best FID, the training steps and wall time it spent, and its curve."""
    found = {}
    for arm, seed in sorted({(r["arm"], r["seed"]) for r in rows}):
        trials = [r for r in rows if (r["arm"], r["seed"]) == (arm, seed)]
        points = curve(trials)
        found[(arm, seed)] = {"trials": len(trials), "complete": sum(t["state"] == "complete" for t in trials),
                              "pruned": sum(t["state"] == "pruned" for t in trials), "best": points[-1][2],
                              "steps": points[-1][0], "wall_s": points[-1][1], "curve": points}  # fmt: skip
    return found


def reached(points, target: float) -> Optional[Tuple[int, float]]:
    """The training steps and wall time at which a search's best FID first reached ``target`` or below."""
    return next(((steps, wall) for steps, wall, best in points if best is not None and best <= target), None)


def number(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def tables(rows: List[Dict]) -> str:
    """table.md: each search, then each arm over the search seeds (mean, standard error, BCa 95 % interval of the best
    FID; steps and wall time), the difference of the arms' best FID (Welch's t-test), and per seed the training steps
    and wall time the pruned search took to reach the upper end of the unpruned arm's 95 % interval."""
    from gan_lightning.results.statistics import describe, difference_of_means

    found = searches(rows)
    seeds = sorted({seed for _, seed in found})
    lines = ["| search | seed | trials: complete / pruned | best FID | training steps | wall time (min) |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (arm, seed), s in found.items():
        lines.append(f"| {ARM_NAMES[arm]} | {seed} | {s['complete']} / {s['pruned']} | {number(s['best'])} | "
                     f"{s['steps']} | {number(s['wall_s'] / 60)} |")  # fmt: skip
    lines += ["", "| arm | searches | best FID, mean ± se | 95 % CI | training steps, mean | wall time (min), mean |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    best = {
        arm: [found[(arm, seed)]["best"] for seed in seeds if found.get((arm, seed), {}).get("best") is not None]
        for arm in ARMS
    }
    described = {}
    for arm in ARMS:
        if not best[arm]:
            continue
        stats = described[arm] = describe(best[arm], seed=0)
        low, high = stats.interval or (math.nan, math.nan)
        steps = [found[(arm, seed)]["steps"] for seed in seeds if (arm, seed) in found]
        walls = [found[(arm, seed)]["wall_s"] / 60 for seed in seeds if (arm, seed) in found]
        lines.append(f"| {ARM_NAMES[arm]} | {stats.n} | {number(stats.mean)} ± {number(stats.sem)} | "
                     f"{number(low)} to {number(high)} | {sum(steps) / len(steps):.0f} | {number(sum(walls) / len(walls))} |")  # fmt: skip
    if len(described) == 2:
        difference = difference_of_means(best["pruned"], best["full"], seed=0, test="welch")
        low, high = difference.interval or (math.nan, math.nan)
        lines += ["", f"Best FID, with pruning minus without: {number(difference.difference)} "
                      f"(95 % CI {number(low)} to {number(high)}), Welch's t-test p = {difference.p_value:.2f}."]  # fmt: skip
        target = (described["full"].interval or (described["full"].mean,) * 2)[1]
        lines += ["", f"Reaching the unpruned searches' best (FID ≤ {number(target)}, the upper end of their 95 % interval):",
                  "", "| seed | with pruning: steps (share of the unpruned search's) | wall time (share) |",
                  "| --- | --- | --- |"]  # fmt: skip
        for seed in seeds:
            pruned, full = found.get(("pruned", seed)), found.get(("full", seed))
            if pruned is None or full is None:
                continue
            hit = reached(pruned["curve"], target)
            if hit is None:
                lines.append(f"| {seed} | not reached ({pruned['steps']} steps, best {number(pruned['best'])}) | – |")
            else:
                lines.append(f"| {seed} | {hit[0]} ({hit[0] / full['steps']:.2f}) | {number(hit[1] / 60)} min "
                             f"({hit[1] / full['wall_s']:.2f}) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(rows: List[Dict], path: Path) -> None:
    from gan_lightning.lazy import pyplot

    plt = pyplot()
    found = searches(rows)
    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(10.0, 3.8), sharey=True)
    for index, arm in enumerate(ARMS):
        color = f"C{index}"
        for seed_index, s in enumerate(v for k, v in found.items() if k[0] == arm):
            shown = [p for p in s["curve"] if p[2] is not None]
            label = ARM_NAMES[arm] if seed_index == 0 else None
            by_steps.step(
                [p[0] for p in shown], [p[2] for p in shown], where="post", color=color, alpha=0.8, label=label
            )
            by_time.step([p[1] / 60 for p in shown], [p[2] for p in shown], where="post", color=color, alpha=0.8)
    by_steps.set_xlabel("training steps, all trials of the search")
    by_time.set_xlabel("wall time of the search (min)")
    by_steps.set_ylabel("best FID so far (completed trials)")
    by_steps.legend()
    for axes in (by_steps, by_time):
        axes.grid(alpha=0.3)
    figure.suptitle("DCGAN on Fashion-MNIST: 16-trial TPE searches, three search seeds each")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: List[str]) -> None:
    if argv[:1] == ["--tables"]:
        print(tables(read_trials(Path(argv[1]) if len(argv) > 1 else HERE)), end="")
        return
    multirun = Path(argv[0]) if argv else Path("multirun/search_pruning")
    out = Path(argv[1]) if len(argv) > 1 else HERE
    rows = collect(multirun)
    with open(out / "trials.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    rows = read_trials(out)
    (out / "table.md").write_text(tables(rows))
    plot(rows, out / "progress.png")
    print((out / "table.md").read_text(), end="")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Each arm's metric against the training step and against wall time, with a band over its seeds.

A run logs every evaluation of a metric to its CSV log (``metrics/<name>``) with the run's wall clock at that moment
(``time/wall_s``). At each step the arm's completed runs all evaluated, the curve is their mean with the bootstrap
95 % interval of the mean (the interval of ``describe``, as in the tables); against wall time, each step's point sits
at the runs' mean wall time there. The periodic evaluations (one protocol) make the line; the last step's value,
under the final protocol when it differs (more samples, so FID is lower by its bias alone), is drawn apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from gan_lightning.lazy import pyplot
from gan_lightning.results.runs import read_series
from gan_lightning.results.statistics import describe

Series = Dict[str, List[Tuple[int, float]]]  # a run's CSV log: each logged name's (step, value) pairs


@dataclass
class CurvePoint:
    step: int
    wall_s: Optional[float]  # the runs' mean wall time at this step; None where a run did not record it
    n: int
    mean: float
    interval: Optional[Tuple[float, float]]
    final: bool  # the last step, under the final protocol where that differs from the periodic one


def arm_curve(runs, logs: List[Series], metric: str, seed: int, resamples: int) -> List[CurvePoint]:
    """The mean curve of ``metric`` over ``runs`` (completed runs of one arm, ``logs`` their CSV logs' series), at the
    steps every one of them evaluated with a finite value."""
    per_run = []
    for series in logs:
        values = {step: value for step, value in series.get(f"metrics/{metric}", []) if math.isfinite(value)}
        per_run.append((values, dict(series.get("time/wall_s", []))))
    if not per_run:
        return []  # an arm without a completed run
    common = sorted(set.intersection(*(set(values) for values, _ in per_run)))
    last_step = max(common, default=None)
    final_differs = any(r.summary.get("metrics_protocol") != (r.summary.get("metrics_best") or {}).get("protocol")
                        for r in runs)  # fmt: skip
    points = []
    for step in common:
        values = [values[step] for values, _ in per_run]
        walls = [walls.get(step) for _, walls in per_run]
        stats = describe(values, seed, resamples if len(values) > 1 else 0)
        wall = sum(walls) / len(walls) if all(w is not None for w in walls) else None
        points.append(
            CurvePoint(step, wall, len(values), stats.mean, stats.interval, step == last_step and final_differs)
        )
    return points


def curves(arms, metrics: List[str], seed: int, resamples: int) -> Dict[str, Dict[str, List[CurvePoint]]]:
    """Per metric, every arm's curve; arms whose runs logged no evaluation of it are left out. Each run's CSV log is
    read once, for every metric."""
    logs = {arm.label: [read_series(Path(run.path) / "csv" / "metrics.csv") for run in arm.completed] for arm in arms}
    by_metric = {}
    for metric in metrics:
        found = {arm.label: arm_curve(arm.completed, logs[arm.label], metric, seed, resamples) for arm in arms}
        by_metric[metric] = {label: points for label, points in found.items() if points}
    return by_metric


def plot_arm_curves(out: Path, metric: str, arm_curves: Dict[str, List[CurvePoint]]) -> Path:
    """``compare_<metric>_curves.png``: the metric against the step (left) and wall time (right), a line and band per
    arm; final-protocol values as separate markers with their intervals."""
    plt = pyplot()

    figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    for index, (label, points) in enumerate(arm_curves.items()):
        color = f"C{index % 10}"
        for axes, x_of in ((by_step, lambda p: p.step), (by_time, lambda p: p.wall_s)):
            periodic = [p for p in points if not p.final and x_of(p) is not None]
            if periodic:
                xs = [x_of(p) for p in periodic]
                axes.plot(xs, [p.mean for p in periodic], color=color, label=f"{label} (n = {periodic[0].n})")
                banded = [p for p in periodic if p.interval is not None]
                if banded:
                    axes.fill_between([x_of(p) for p in banded], [p.interval[0] for p in banded],
                                      [p.interval[1] for p in banded], color=color, alpha=0.2, linewidth=0)  # fmt: skip
            for p in points:
                if p.final and x_of(p) is not None:
                    low, high = p.interval or (p.mean, p.mean)
                    axes.errorbar([x_of(p)], [p.mean], yerr=[[p.mean - low], [high - p.mean]], color=color,
                                  marker="D", capsize=4)  # fmt: skip
    by_step.set_xlabel("training step")
    by_time.set_xlabel("wall time (s)")
    for axes in (by_step, by_time):
        axes.set_ylabel(metric)
    by_step.legend(fontsize=7)
    figure.suptitle(f"{metric}: mean over seeds with 95 % interval; diamonds: final protocol", fontsize=9)
    figure.tight_layout()
    path = out / f"compare_{metric.replace('/', '_')}_curves.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

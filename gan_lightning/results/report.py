"""The report of a run or a multirun from its local files alone (``python -m gan_lightning.report``): a table of the
runs, their curves and their last sample grids."""

from __future__ import annotations

import logging
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from gan_lightning.errors import UserError
from gan_lightning.lazy import pyplot
from gan_lightning.results.runs import find_runs, measured_on, read_series, readable_summary, run_labels
from gan_lightning.results.statistics import mean_and_error

log = logging.getLogger("gan_lightning")

CURVE_PANELS = (("losses", ("loss/d", "loss/g")), ("D outputs", ("d/real", "d/fake")))
# Metrics shown in the table, in this order, when any run has them.
TABLE_METRICS = (
    "fid",
    "is_mean",
    "kid_mean",
    "precision",
    "recall",
    "modes",
    "hq_fraction",
    "reverse_kl",
    "balanced_hq_fraction",
    "w1_distance",
    "ks_statistic",
    "loss/d",
    "loss/g",
    "d/real",
    "d/fake",
)
FIGURE_DPI = 100
CURVES_SIZE = (10.0, 3.2)  # inches per row of panels
SAMPLE_PANEL = 3.0  # inches per run in the sample-grid figure


@dataclass
class RunRecord:
    name: str
    folder: Path
    summary: Dict
    series: Dict[str, List[Tuple[int, float]]] = field(default_factory=dict)

    label: str = ""  # what sets this run apart from the others of its sweep


def load_runs(directory: Path) -> List[RunRecord]:
    """Every readable run under ``directory``; a run whose summary.json cannot be read is left out and named."""
    runs = []
    for path in find_runs(directory):
        summary = readable_summary(path)
        if summary is not None:
            runs.append(RunRecord(path.name, path, summary, read_series(path / "csv" / "metrics.csv")))
    if not runs:
        raise UserError(f"{directory} holds no readable run: no summary.json in it or in its job folders.")
    for run, label in zip(runs, run_labels([r.summary for r in runs], [r.name for r in runs])):
        run.label = label
    return runs


def arms_table(runs: List[RunRecord]) -> List[str]:
    """Where runs differ in more than their seed: each arm's mean ± standard error over its completed runs (the arms
    and statistics of ``python -m gan_lightning.compare``, which adds intervals and tests)."""
    from gan_lightning.results.arms import Run, group

    arms = group([Run(run.folder, run.summary) for run in runs])
    if len(arms) == len(runs) or len(arms) < 2:
        return []  # every run its own arm, or one arm: the table above says it all
    metrics = [m for m in TABLE_METRICS if any(m in r.summary.get("metrics", {}) for r in runs)]
    lines = ["## Arms over seeds", "", "Mean ± standard error over each arm's completed runs; `python -m "
             "gan_lightning.compare` gives intervals and tests.", "",
             "| arm | completed / runs | " + " | ".join(metrics) + " |", "|" + " --- |" * (len(metrics) + 2)]  # fmt: skip
    for arm in arms:
        cells = [mean_and_error([run.summary["metrics"].get(m) for run in arm.completed if isinstance(run.summary["metrics"].get(m), (int, float))], 4)
                 for m in metrics]  # fmt: skip
        lines.append(f"| {arm.label} | {len(arm.completed)} / {len(arm.runs)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def format_value(value) -> str:
    if isinstance(value, (int, float)):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "" if value is None else str(value)


def runs_table(runs: List[RunRecord]) -> str:
    metrics = [m for m in TABLE_METRICS if any(m in r.summary.get("metrics", {}) for r in runs)]
    header = ["run", "overrides", "status", "steps", "wall time (s)", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for run in runs:
        values = run.summary.get("metrics", {})
        cells = [run.name, "`" + " ".join(run.summary.get("overrides", [])) + "`", run.summary.get("status", "?"),
                 str(run.summary.get("global_step", "")), format_value(run.summary.get("wall_time_s")),
                 *(format_value(values.get(m)) for m in metrics)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def panel_grid(count: int, max_columns: int, size: Callable[[int, int], Tuple[float, float]]):
    """A figure of ``count`` panels in rows of at most ``max_columns``, sized by ``size(columns, rows)`` in inches;
    the axes as a 2-D array."""
    columns = min(max_columns, count)
    rows = math.ceil(count / columns)
    return pyplot().subplots(rows, columns, figsize=size(columns, rows), dpi=FIGURE_DPI, squeeze=False)


def plot_run_curves(run: RunRecord, path: Path) -> Optional[Path]:
    """Losses, D outputs and each metric of one run against the training step; None without a CSV log."""
    metric_keys = sorted(k for k in run.series if k.startswith("metrics/"))
    panels = [(title, [k for k in keys if k in run.series]) for title, keys in CURVE_PANELS]
    panels = [(title, keys) for title, keys in panels if keys] + [
        (key.removeprefix("metrics/"), [key]) for key in metric_keys
    ]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = panel_grid(len(panels), 3, lambda columns, rows: (CURVES_SIZE[0], CURVES_SIZE[1] * rows))
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in keys:
            steps, values = zip(*run.series[key])
            ax.plot(steps, values, label=key, marker="o" if len(steps) < 20 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        if len(keys) > 1:
            ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(textwrap.fill(" ".join(run.summary.get("overrides", [])), 140), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_samples(runs: List[RunRecord], path: Path) -> Optional[Path]:
    """The last sample picture of every run, side by side, titled by the run's overrides."""
    grids = [
        (run, run.folder / "samples" / "last.png") for run in runs if (run.folder / "samples" / "last.png").is_file()
    ]
    if not grids:
        return None
    plt = pyplot()
    fig, axes = panel_grid(len(grids), 4, lambda columns, rows: (SAMPLE_PANEL * columns, SAMPLE_PANEL * rows + 0.4))
    for ax, (run, grid) in zip(axes.flat, grids):
        try:
            ax.imshow(plt.imread(grid))
        except Exception as error:  # a damaged picture costs its panel, not the report
            log.warning(f"left out {grid}: it cannot be read ({type(error).__name__}: {error})")
        ax.set_title(textwrap.fill(f"{run.name}: {run.label}", 45), fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(directory: Path) -> Path:
    directory = Path(directory)
    runs = load_runs(directory)
    figures = directory / "report"
    figures.mkdir(exist_ok=True)
    statuses = {}
    for run in runs:
        statuses[run.summary.get("status", "?")] = statuses.get(run.summary.get("status", "?"), 0) + 1
    lines = [
        f"# Report: {directory}",
        "",
        f"{len(runs)} run(s): " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ".",
        "Metrics are the final values from each run's summary.json; steps count training steps (d_steps D updates and g_steps G updates each).",
        measured_on([run.summary for run in runs]),
        "",
        runs_table(runs),
        "",
        *arms_table(runs),
    ]
    samples = plot_samples(runs, figures / "samples.png")
    if samples is not None:
        lines += ["## Last samples", "", f"![last samples of every run](report/{samples.name})", ""]
    lines += ["## Curves", ""]
    for run in runs:
        curves = plot_run_curves(run, figures / f"curves_{run.name}.png")
        lines += [f"### {run.name}: `{run.label}`", ""]
        lines += [f"![curves of {run.name}](report/{curves.name})", ""] if curves else ["(no CSV log)", ""]
        if run.summary.get("error"):
            lines += [f"Error: {run.summary['error']}", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path

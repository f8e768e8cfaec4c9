"""What a study leaves in its sweep directory: ``study.md`` (trials by state, the best trial with its settings, value
and run directory, parameter importances, the best value so far against training steps and wall time, every trial)
and ``study_progress.png``; read from the storage, so a study continued or shared by several sweeps is reported
whole. ``python -m gan_lightning.report dir=<sweep>`` and optuna-dashboard read the same storage."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from gan_lightning.files import atomic_write
from gan_lightning.lazy import pyplot
from gan_lightning.results.runs import readable_summary
from gan_lightning.study import records
from gan_lightning.study.storage import dashboard_command, storage_url

log = logging.getLogger("gan_lightning")

REPORT_FILE = "study.md"
PROGRESS_PLOT = "study_progress.png"


@dataclass
class TrialRow:
    """A trial as the report lists it: Optuna's record and its run's summary."""

    number: int
    state: str
    value: Any
    params: Dict[str, Any]
    run_dir: Optional[str]
    steps: int
    wall_s: float
    ended: Optional[float]  # seconds after the study's first trial started
    retry_of: Optional[int]
    stopped: Optional[str]


def trial_rows(study: Any, sweep_dir: Optional[Path] = None) -> List[TrialRow]:
    """Every trial that started; ``sweep_dir``: where the trials' directories are now, if the sweep was moved (a
    directory recorded elsewhere is looked for there under its own name)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start is not None]
    first = min((t.datetime_start.timestamp() for t in trials), default=0.0)
    rows = []
    for trial in trials:
        run_dir = trial.user_attrs.get(records.RUN_DIR)
        if run_dir and sweep_dir is not None and not Path(run_dir).is_dir():
            run_dir = str(Path(sweep_dir) / Path(run_dir).name)
        summary = (
            readable_summary(Path(run_dir)) if run_dir and (Path(run_dir) / "summary.json").is_file() else None
        ) or {}
        ended = trial.datetime_complete.timestamp() - first if trial.datetime_complete else None
        value = trial.values[0] if trial.values and len(trial.values) == 1 else trial.values
        rows.append(TrialRow(trial.number, trial.state.name.lower(), value, dict(trial.params), run_dir,
                             int(summary.get("global_step", 0)), float(summary.get("wall_time_s", 0.0)), ended,
                             trial.user_attrs.get(records.RETRY_OF), trial.user_attrs.get(records.STOPPED)))  # fmt: skip
    return rows


def best_so_far(rows: List[TrialRow], maximize: bool) -> List[Dict[str, float]]:
    """In the order trials ended: training steps and wall time spent so far, and the best value reached so far (a
    pruned trial's steps count; its value, measured on fewer steps, does not compete)."""
    points, steps, best = [], 0, None
    for row in sorted((r for r in rows if r.ended is not None), key=lambda r: r.ended):
        steps += row.steps
        if row.state == "complete" and isinstance(row.value, (int, float)) and math.isfinite(row.value):
            best = row.value if best is None else (max if maximize else min)(best, row.value)
        points.append({"trial": row.number, "steps": steps, "wall_s": row.ended, "best": best})
    return points


def importances(study: Any) -> Dict[str, float]:
    """Each parameter's share of the variation in the value among the better trials (PED-ANOVA, Watanabe et al. 2023;
    needs no extra package); empty where too few trials completed."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    if len(study.directions) > 1:
        return {}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 4 or not any(len(t.params) for t in complete):
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study, evaluator=PedAnovaImportanceEvaluator()))
    except (ValueError, RuntimeError, ZeroDivisionError) as error:
        log.info(f"parameter importances not computed: {error}")
        return {}


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_study_report(study: Any, sweep_dir: Path, settings: Any, metric: Any, wandb: bool = False) -> Path:
    """study.md and its figure; with ``wandb``, the same tables and figure as a W&B run in the sweep's group."""
    rows = trial_rows(study, sweep_dir)
    maximize = settings.directions[0] == "maximize"
    states: Dict[str, int] = {}
    for row in rows:
        if row.stopped != "surplus":
            states[row.state] = states.get(row.state, 0) + 1
    lines = [
        f"# Study {study.study_name}",
        "",
        f"Storage: `{storage_url(settings.storage, sweep_dir)}`; sampler {type(study.sampler).__name__}, pruner "
        f"{type(study.pruner).__name__}; {' and '.join(settings.directions)} `optimized_metric={value_text(metric)}`; "
        f"{settings.n_trials} trials asked for.",
        f"Open it in optuna-dashboard: `{dashboard_command(settings.storage, sweep_dir)}`.",
        "",
        "Trials: " + (", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"),
    ]
    stopped = [r for r in rows if r.stopped in ("interrupted", "lost")]
    if stopped:
        lines.append(
            "Stopped before they ended (their parameters ran again as new trials where retries were left): "
            + ", ".join(f"{r.number} ({r.stopped})" for r in stopped)
        )
    complete = [r for r in rows if r.state == "complete" and r.value is not None]
    if complete and len(settings.directions) == 1:
        best = study.best_trial
        row = next(r for r in rows if r.number == best.number)
        lines += [
            "",
            "## Best trial",
            "",
            f"Trial {best.number}: {value_text(best.value)}, run directory `{row.run_dir}`.",
            "",
        ]
        lines += [f"- `{key}={value}`" for key, value in best.params.items()]
    shares = importances(study)
    if shares:
        lines += ["", "## Parameter importances (PED-ANOVA)", "", "| parameter | importance |", "| --- | --- |"]
        lines += [f"| `{key}` | {share:.3f} |" for key, share in shares.items()]
    points = best_so_far(rows, maximize)
    if points:
        lines += ["", "## Best value so far", "", f"![best value against training steps and wall time]({PROGRESS_PLOT})", "",
                  "| after trial | training steps | wall time (s) | best value |", "| --- | --- | --- | --- |"]  # fmt: skip
        lines += [f"| {p['trial']} | {p['steps']} | {p['wall_s']:.0f} | {value_text(p['best'])} |" for p in points]
        plot_progress(points, sweep_dir / PROGRESS_PLOT)
    lines += ["", "## Trials", "", "| trial | state | value | steps | wall time (s) | parameters | run directory |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for row in sorted(rows, key=lambda r: r.number):
        params = " ".join(f"{k}={value_text(v)}" for k, v in row.params.items())
        again = f" (trial {row.retry_of} again)" if row.retry_of is not None else ""
        lines.append(f"| {row.number}{again} | {row.state}{f' ({row.stopped})' if row.stopped else ''} | "
                     f"{value_text(row.value)} | {row.steps} | {row.wall_s:.0f} | {params} | {row.run_dir or ''} |")  # fmt: skip
    path = atomic_write(sweep_dir / REPORT_FILE, "\n".join(lines) + "\n")
    log.info(f"study report: {path}")
    if wandb:
        from gan_lightning.tracking.sweep_tables import log_sweep_tables

        columns = [
            "trial",
            "state",
            "value",
            "steps",
            "wall_s",
            "run_dir",
            *sorted({k for r in rows for k in r.params}),
        ]
        trials = [[r.number, r.state, value_text(r.value), r.steps, r.wall_s, r.run_dir or "",
                   *(value_text(r.params.get(k)) for k in columns[6:])] for r in rows]  # fmt: skip
        progress = (
            ["trial", "steps", "wall_s", "best"],
            [[p["trial"], p["steps"], p["wall_s"], p["best"]] for p in points],
        )
        tables = {"study/trials": (columns, trials), "study/best_so_far": progress}
        if shares:
            tables["study/importances"] = (["parameter", "importance"], [[k, v] for k, v in shares.items()])
        log_sweep_tables(sweep_dir, sweep_dir, "study", tables, {"study/progress": sweep_dir / PROGRESS_PLOT})
    return path


def plot_progress(points: List[Dict[str, float]], path: Path) -> None:
    plt = pyplot()
    shown = [p for p in points if p["best"] is not None]
    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for axes, key, label in ((by_steps, "steps", "training steps, all trials"), (by_time, "wall_s", "wall time (s)")):
        axes.step([p[key] for p in shown], [p["best"] for p in shown], where="post", marker="o")
        axes.set_xlabel(label)
        axes.set_ylabel("best value so far")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

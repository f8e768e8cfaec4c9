"""Scores of checkpoints under their protocol: one checkpoint, or every kept checkpoint of runs and sweeps, cached in
each run's ``evaluation.json``, recorded in its ``summary.json`` and its own W&B run, and tabled and plotted
(``python -m gan_lightning.evaluate``)."""

from __future__ import annotations

import csv
import json
import logging
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from gan_lightning.checkpoints.folder import (
    best_checkpoint,
    checkpoint_folder,
    kept_checkpoints,
    kept_step,
    last_checkpoint,
)
from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.errors import UserError
from gan_lightning.files import atomic_write
from gan_lightning.lazy import pyplot
from gan_lightning.metrics.goals import SUMMARY_GOALS, better
from gan_lightning.results.restore import configure, read_checkpoint, restore_module, run_metrics
from gan_lightning.results.runs import comparable_protocol, find_runs, readable_summary, run_labels
from gan_lightning.runs.summary import FILENAME, read_summary, scalar_metrics, write_summary
from gan_lightning.tracking.evaluations import log_evaluations
from gan_lightning.training.distributed import Shares
from gan_lightning.training.state import steps_done, stored_config, stored_run_id

log = logging.getLogger("gan_lightning")
CACHE = "evaluation.json"  # in each run directory: every score computed for it, with its protocol


class Scoring:
    """One checkpoint's networks and the evaluation that its config and the command's overrides call for."""

    def __init__(self, checkpoint_path: Path, overrides: List[str]):
        checkpoint = read_checkpoint(str(checkpoint_path))
        settings = None
        if not any(o.startswith("metrics=") for o in overrides):
            # By default the run's own final protocol (its metrics and their settings: final_num_samples, ...), so
            # that the scores match its summary.json; for a run that measured none, the kind metrics=auto chooses.
            kind, settings = run_metrics(checkpoint)
            if kind == "none":
                kind, settings = configure(checkpoint, ["metrics=auto"]).metrics.option, None
            overrides = [f"metrics={kind}", *overrides]
        config = configure(checkpoint, overrides, settings)
        self.path, self.module = checkpoint_path, restore_module(checkpoint, config, overrides)
        config.metrics.check(config.data)
        config.metrics.prepare(config.data)
        self.evaluation = config.metrics.callback(config.data, config.seed)
        self.protocol = self.evaluation.protocol(self.module, final=True) if self.evaluation is not None else {}

    def result(self, metrics: Dict[str, float]) -> Dict[str, Any]:
        return {
            "checkpoint": str(self.path),
            "step": self.module.steps_done,
            "metrics": metrics,
            "protocol": self.protocol,
        }

    def cached(self, records: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """The record of ``records`` with this checkpoint's step and protocol (marked "cached"), if any."""
        if self.evaluation is None:
            return self.result({})
        for record in records:
            if record["step"] == self.module.steps_done and record["protocol"] == self.protocol:
                return {**record, "checkpoint": str(self.path), "cached": True}
        return None

    def measure(self, shares: Shares) -> Optional[Dict[str, Any]]:
        """The scores, computed together by the processes of ``shares``; None on all but the first."""
        if self.evaluation is None:
            return self.result({})
        module = self.module.cuda() if torch.cuda.is_available() else self.module
        module.max_steps = module.steps_done  # measure as at the last step: the final number of samples
        metrics = self.evaluation.measure(module, final=True, shares=shares)
        return None if metrics is None else self.result(metrics)


def score(
    scorings: List[Scoring], overrides: List[str], processes: int = 1, labels: Optional[Dict[Path, str]] = None
) -> List[Dict[str, Any]]:
    """The scores of each checkpoint, computed by ``processes`` processes that share generation and feature
    extraction (one per GPU where there are enough GPUs, else CPU processes talking through gloo). With ``labels``
    (run directory: label), one progress line per checkpoint."""
    if processes == 1 or not scorings:
        results = []
        for number, scoring in enumerate(scorings, 1):
            started = time.perf_counter()
            results.append(scoring.measure(Shares()))
            if labels is not None:
                log.info(f"[{number}/{len(scorings)}] {labels[scoring.path.parent.parent]} step {scoring.module.steps_done}: "
                         f"{describe(results[-1]['metrics'])} ({time.perf_counter() - started:.1f} s)")  # fmt: skip
        return results
    log.info(
        f"{processes} {'GPU' if on_gpus(processes) else 'CPU'} processes share the generation and feature extraction"
    )
    with tempfile.TemporaryDirectory() as scratch:
        args = (processes, free_port(), [str(scoring.path) for scoring in scorings], overrides, scratch)
        torch.multiprocessing.start_processes(score_share, args=args, nprocs=processes, start_method="spawn")
        return json.loads((Path(scratch) / "scores.json").read_text())


def score_share(rank: int, processes: int, port: int, paths: List[str], overrides: List[str], scratch: str) -> None:
    """One process of ``score``: its share of every checkpoint's samples; the first process writes the scores."""
    gpus = on_gpus(processes)
    if gpus:
        torch.cuda.set_device(rank)
    torch.distributed.init_process_group(
        "nccl" if gpus else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=processes
    )
    try:
        results = [Scoring(Path(path), overrides).measure(Shares(rank, processes)) for path in paths]
        if rank == 0:
            atomic_write(Path(scratch) / "scores.json", json.dumps(results))
    finally:
        torch.distributed.destroy_process_group()


def describe(metrics: Dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()) or "nothing measured"


def on_gpus(processes: int) -> bool:
    """Whether ``processes`` evaluation processes get a GPU each (NCCL), or run on the CPU (gloo)."""
    return torch.cuda.is_available() and torch.cuda.device_count() >= processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_directories(paths: List[Path]) -> List[Path]:
    """The run directories named, or found one level inside the sweep directories named."""
    runs: List[Path] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"runs={str(path)!r}: no such directory.")
        inside = find_runs(path, lambda folder: checkpoint_folder(folder).is_dir())
        if not inside:
            raise UserError(
                f"runs={str(path)!r}: neither a run directory (with checkpoints/) nor a sweep directory holding runs."
            )
        runs.extend(inside)
    return runs


def checkpoints_to_score(run_dir: Path) -> List[Path]:
    """step_<N>.ckpt, and best.ckpt and last.ckpt where they hold a step no other file does, in step order."""
    by_step = {kept_step(path): path for path in kept_checkpoints(run_dir)}
    for path in (best_checkpoint(run_dir), last_checkpoint(run_dir)):
        if path.is_file():
            by_step.setdefault(steps_done(load_safely(path)), path)
    return [by_step[step] for step in sorted(by_step)]


def read_cache(run_dir: Path) -> List[Dict[str, Any]]:
    path = run_dir / CACHE
    return json.loads(path.read_text())["records"] if path.is_file() else []


def merge(records: List[Dict[str, Any]], new: Dict[str, Any]) -> List[Dict[str, Any]]:
    """``records`` with ``new`` in place of any record of the same step and protocol."""
    kept = [r for r in records if not (r["step"] == new["step"] and r["protocol"] == new["protocol"])]
    return sorted([*kept, {k: v for k, v in new.items() if k != "cached"}], key=lambda r: r["step"])


def best_and_last(records: List[Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    """For each metric with a better direction: its best value (the first of equal ones) and last value, with their
    steps, over ``records`` in step order (all of one protocol)."""
    table: Dict[str, Dict[str, float]] = {}
    for name in SUMMARY_GOALS:
        scored = [(r["step"], r["metrics"][name]) for r in records if name in r["metrics"]]
        if not scored:
            continue
        best_step, best = scored[0]
        for step, value in scored[1:]:
            if better(name, value, best):
                best_step, best = step, value
        last_step, last = scored[-1]
        table[name] = {"best": best, "best_step": best_step, "last": last, "last_step": last_step}
    return table


def record_in_summary(run_dir: Path, records: List[Dict[str, Any]]) -> None:
    """summary.json gains (or replaces) ``evaluation`` from ``records``, this call's scores of the run (one protocol);
    nothing else of it changes."""
    if not (run_dir / FILENAME).is_file():
        return
    summary = read_summary(run_dir)
    table = {
        name: {**scalar_metrics(values), "best_step": values["best_step"], "last_step": values["last_step"]}
        for name, values in best_and_last(records).items()
    }
    summary["evaluation"] = {"metrics": table, "protocol": records[-1]["protocol"], "checkpoints": len(records)}
    write_summary(run_dir, summary)


def record_in_wandb(run_dir: Path, new: List[Dict[str, Any]], records: List[Dict[str, Any]]) -> None:
    """Log the new scores to the run's own W&B run (continued under its id), with the best and last of ``records``
    (this call's scores of the run) as its summary."""
    if not new or not (run_dir / "wandb").is_dir():
        return
    checkpoint = load_safely(Path(new[-1]["checkpoint"]))
    run_id, logger = stored_run_id(checkpoint), stored_config(checkpoint).get("logger", {})
    if run_id is None or not logger.get("wandb", False) or (logger.get("mode") or "offline") == "disabled":
        return
    log_evaluations(run_dir, run_id, logger, new, records[-1]["protocol"], best_and_last(records))


def write_tables(out: Path, rows: List[Dict[str, Any]]) -> None:
    """evaluation.csv (one row per run × checkpoint), evaluation.md (one table per protocol) and the plots."""
    names = sorted({name for row in rows for name in row["metrics"]})
    with open(out / "evaluation.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "label", "checkpoint", "step", *names, "protocol"])
        for row in rows:
            writer.writerow([row["run"], row["label"], Path(row["checkpoint"]).name, row["step"], *(row["metrics"].get(n, "") for n in names),
                             json.dumps(row["protocol"], sort_keys=True)])  # fmt: skip
    protocols: List[Dict[str, Any]] = []
    for row in rows:
        if comparable_protocol(row["protocol"]) not in protocols:
            protocols.append(comparable_protocol(row["protocol"]))
    lines = ["# Evaluation", ""]
    for number, protocol in enumerate(protocols, 1):
        # Scores under different protocols are not comparable: each protocol has a table of its own.
        lines += [f"## Protocol {number}", "", ", ".join(f"{k}: {v}" for k, v in protocol.items()), ""]
        lines += [
            "| run | checkpoint | step | latent seed | " + " | ".join(names) + " |",
            "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " |",
        ]
        for row in (r for r in rows if comparable_protocol(r["protocol"]) == protocol):
            values = " | ".join(f"{row['metrics'][n]:.4g}" if n in row["metrics"] else "" for n in names)
            lines.append(
                f"| {row['label']} | {Path(row['checkpoint']).name} | {row['step']} | {row['protocol'].get('latent_seed', '')} | {values} |"
            )
        lines.append("")
    (out / "evaluation.md").write_text("\n".join(lines))
    plot(out, rows, names)


def plot(out: Path, rows: List[Dict[str, Any]], names: List[str]) -> None:
    plt = pyplot()

    for name in names:
        figure, axes = plt.subplots(figsize=(6, 4))
        for run in dict.fromkeys(row["run"] for row in rows):
            points = [
                (row["step"], row["metrics"][name]) for row in rows if row["run"] == run and name in row["metrics"]
            ]
            if points:
                label = next(row["label"] for row in rows if row["run"] == run)
                axes.plot(*zip(*points), marker="o", label=label)
        axes.set_xlabel("training step")
        axes.set_ylabel(name)
        axes.legend(fontsize="small")
        figure.tight_layout()
        atomic_write(out / f"evaluation_{name}.png", lambda f, figure=figure: figure.savefig(f, format="png", dpi=100))
        plt.close(figure)


def evaluate_runs(
    paths: List[Path], out: Path, overrides: List[str], force: bool, processes: int = 1
) -> List[Dict[str, Any]]:
    runs, labels = readable_runs(run_directories(paths))
    caches = {run_dir: read_cache(run_dir) for run_dir in runs}  # every protocol's scores
    found: Dict[Path, Optional[Dict[str, Any]]] = {}
    missing: Dict[Path, Scoring] = {}
    for run_dir in runs:
        kept = checkpoints_to_score(run_dir)
        if len(kept) == 1:
            log.warning(
                f"{run_dir}: one checkpoint ({kept[0].name}), so one point against the step; a run keeps "
                f"more with callbacks.keep_every_n_steps=N (checkpoints/step_<N>.ckpt)"
            )
        for path in kept:
            scoring = Scoring(path, overrides)
            found[path] = scoring.cached([] if force else caches[run_dir])
            if found[path] is None:
                missing[path] = scoring
    log.info(f"{len(found)} checkpoints of {len(runs)} runs: {len(found) - len(missing)} scored before, "
             f"{len(missing)} to score")  # fmt: skip
    found.update(zip(missing, score(list(missing.values()), overrides, processes, labels)))
    rows: List[Dict[str, Any]] = []
    for run_dir in runs:
        scored = [found[path] for path in found if path.parent.parent == run_dir]  # this call's scores (one protocol)
        new = [result for result in scored if not result.get("cached")]
        for result in new:
            caches[run_dir] = merge(caches[run_dir], result)
        if new:
            atomic_write(
                run_dir / CACHE, json.dumps({"records": caches[run_dir]}, indent=2) + "\n"
            )  # Infinity stays a number here
        rows.extend({**result, "run": str(run_dir), "label": labels[run_dir]} for result in scored)
        if scored:
            record_in_summary(run_dir, scored)
            record_in_wandb(run_dir, new, scored)
    out.mkdir(parents=True, exist_ok=True)
    write_tables(out, rows)
    print(f"{len(rows)} checkpoints of {len(runs)} runs: {len(missing)} scored, {len(rows) - len(missing)} from the cache; "
          f"results in {out / 'evaluation.csv'}, {out / 'evaluation.md'}")  # fmt: skip
    return rows


def readable_runs(runs: List[Path]) -> Tuple[List[Path], Dict[Path, str]]:
    """The runs whose summary.json is readable or absent (a run killed before its first summary), each with its label:
    the overrides that set it apart from the others. A run with an unreadable summary.json is left out, and named."""
    kept: List[Path] = []
    summaries: List[Dict[str, Any]] = []
    for run_dir in runs:
        summary = readable_summary(run_dir) if (run_dir / FILENAME).exists() else {}
        if summary is not None:
            kept.append(run_dir)
            summaries.append(summary)
    if not kept:
        raise UserError(f"runs=: none of {len(runs)} runs has a readable summary.json.")
    return kept, dict(zip(kept, run_labels(summaries, [run_dir.name for run_dir in kept])))

"""Finding finished runs and reading what they left: their summaries, their CSV series, labels and the machines
they ran on."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from gan_lightning.runs.summary import FILENAME, read_summary

log = logging.getLogger("gan_lightning")


def describe_machine(record: Mapping[str, Any]) -> str:
    """A ``machine`` record in words: the GPU, or the processor with the threads and cores the run had."""
    if record.get("device", "cpu") != "cpu":
        where = record["device"]
    else:
        where = f"{record.get('processor', '?')} CPU, {record.get('threads', '?')} thread(s) of {record.get('cpus', '?')} core(s)"
    processes = f", {record['processes']} processes" if record.get("processes", 1) > 1 else ""
    return f"{where}{processes}, torch {record.get('torch', '?')}"


def measured_on(summaries: Iterable[Mapping[str, Any]]) -> str:
    """Where a set of runs' wall times were measured: each machine they recorded, with how many ran on it."""
    counts: Dict[str, int] = {}
    for summary in summaries:
        name = describe_machine(summary["machine"]) if "machine" in summary else "not recorded"
        counts[name] = counts.get(name, 0) + 1
    return "Measured on: " + "; ".join(f"{name} ({n} run(s))" for name, n in counts.items()) + "."


def comparable_protocol(protocol: Mapping[str, Any]) -> Dict[str, Any]:
    """A metrics protocol without its latent seed: scores of runs with other seeds (other latents, by design) compare."""
    return {k: v for k, v in (protocol or {}).items() if k != "latent_seed"}


def has_summary(folder: Path) -> bool:
    return (folder / FILENAME).is_file()


def job_order(folder: Path) -> tuple:
    """Job folders by job number (2 before 10), other names after them."""
    return (not folder.name.isdigit(), int(folder.name) if folder.name.isdigit() else 0, folder.name)


def find_runs(directory: Path, is_run: Callable[[Path], bool] = has_summary) -> List[Path]:
    """The run itself when ``directory`` is one (by default: holds a summary.json), else its job folders that are
    (sorted by job number)."""
    if is_run(directory):
        return [directory]
    return sorted((p for p in directory.iterdir() if p.is_dir() and is_run(p)), key=job_order)


def readable_summary(run_dir: Path) -> Optional[Dict[str, Any]]:
    """The run's summary, or None (the run is left out, and named) where summary.json cannot be read."""
    try:
        return read_summary(run_dir)
    except (OSError, ValueError) as error:
        log.warning(f"left out {Path(run_dir) / FILENAME}: it cannot be read ({type(error).__name__}: {error})")
        return None


def read_series(csv_path: Path) -> Dict[str, List[Tuple[int, float]]]:
    """Every logged scalar of a run's CSV log as (step, value) pairs."""
    series: Dict[str, List[Tuple[int, float]]] = {}
    if not csv_path.is_file():
        return series
    skipped = 0
    with open(csv_path, newline="", errors="replace") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row["step"])) if row.get("step") else None
                values = [
                    (key, float(value))
                    for key, value in row.items()
                    if key not in ("step", "epoch", None) and value not in ("", None)
                ]
            except (TypeError, ValueError):
                skipped += 1
                continue
            if step is not None:
                for key, value in values:
                    series.setdefault(key, []).append((step, value))
    if skipped:
        log.warning(f"left out {skipped} unreadable row(s) of {csv_path}")
    return series


def run_labels(summaries: List[Mapping[str, Any]], names: List[str]) -> List[str]:
    """A label for each run of a sweep: the overrides it does not share with all the others (all of its own for a
    single run), or its name where that leaves none."""
    overrides = [list(summary.get("overrides", [])) for summary in summaries]
    shared = set.intersection(*(set(o) for o in overrides)) if len(overrides) > 1 else set()
    return [" ".join(o for o in own if o not in shared) or name for own, name in zip(overrides, names)]

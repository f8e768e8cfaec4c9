"""Runs grouped into arms: the runs of a comparison that differ only in their seed (or in settings other than those
``arms=`` names) form one arm, labelled by the overrides that set it apart from the other arms.

Which values enter the statistics: a completed run's final value of each metric, under its final protocol
(``summary.json``'s ``metrics`` and ``metrics_protocol``), and its best value under the periodic protocol
(``metrics_best``). A run that diverged, failed or was interrupted has no final value: it is counted and listed with
its arm, and left out of the statistics. Values measured under different protocols are never pooled: a metric whose
protocol differs between the runs of a comparison is refused for that metric, naming the runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gan_lightning.errors import UserError
from gan_lightning.metrics.goals import SUMMARY_GOALS
from gan_lightning.results.runs import comparable_protocol, find_runs, readable_summary

NOT_AN_ARM = ("seed",)  # what differs between the runs of one arm


@dataclass
class Run:
    path: Path
    summary: Dict[str, Any]

    @property
    def overrides(self) -> Dict[str, str]:
        pairs = (o.lstrip("+~").split("=", 1) for o in self.summary.get("overrides", []) if "=" in o)
        return {key: value for key, value in pairs if not key.startswith(("hydra.", "hydra/"))}

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))


@dataclass
class Arm:
    label: str
    runs: List[Run] = field(default_factory=list)

    @property
    def completed(self) -> List[Run]:
        return [run for run in self.runs if run.status == "completed"]

    @property
    def unfinished(self) -> Dict[str, List[Run]]:
        """The runs left out of the statistics, by status (diverged, failed, interrupted)."""
        left: Dict[str, List[Run]] = {}
        for run in self.runs:
            if run.status != "completed":
                left.setdefault(run.status, []).append(run)
        return left


def read_runs(paths: Sequence[Path]) -> List[Run]:
    """The runs of run directories and sweep directories (their job folders); an unreadable summary.json is left out
    and named."""
    runs: List[Run] = []
    for path in paths:
        if not path.is_dir():
            raise UserError(f"runs={str(path)!r}: no such directory.")
        for folder in find_runs(path):
            summary = readable_summary(folder)
            if summary is not None:
                runs.append(Run(folder, summary))
    if not runs:
        raise UserError(
            f"runs={','.join(str(p) for p in paths)}: no readable run (a summary.json in the directory or its job folders)."
        )
    return runs


def group(runs: List[Run], keys: Optional[Sequence[str]] = None) -> List[Arm]:
    """Arms of ``runs``: by the settings ``keys`` names, or else by every override that differs between the runs but
    the seed. Arms keep the order of their first run."""
    every = sorted({key for run in runs for key in run.overrides})
    differing = [k for k in every if k not in NOT_AN_ARM and len({run.overrides.get(k) for run in runs}) > 1]
    if keys is None:
        keys = differing
    else:
        absent = [key for key in keys if all(key not in run.overrides for run in runs)]
        if absent:
            raise UserError(
                f"arms={','.join(keys)}: no run sets {', '.join(absent)}; the settings that differ between these runs: "
                f"{', '.join(differing) or 'none but the seed'}."
            )
    arms: Dict[Tuple[Optional[str], ...], Arm] = {}
    for run in runs:
        values = tuple(run.overrides.get(key) for key in keys)
        label = " ".join(f"{key}={value}" for key, value in zip(keys, values) if value is not None) or "all runs"
        arms.setdefault(values, Arm(label)).runs.append(run)
    return list(arms.values())


@dataclass
class Scores:
    """One metric's values per arm (completed runs only), or why the metric cannot be compared."""

    metric: str
    kind: str  # "final" or "best"
    values: Dict[str, List[float]]  # arm label -> values
    protocol: Dict[str, Any]
    refused: str = ""
    nonfinite: Dict[str, int] = field(default_factory=dict)  # arm label -> completed runs with a non-finite value


def scores(arms: List[Arm], metric: str, kind: str) -> Scores:
    """The values of ``metric`` (``kind``: the final value, or the best periodic one) of every completed run, by arm;
    refused (with the reason) where the runs measured it under different protocols."""
    values: Dict[str, List[float]] = {}
    nonfinite: Dict[str, int] = {}
    protocols: Dict[str, Tuple[Dict[str, Any], List[str]]] = {}  # protocol (as text) -> it and its runs
    for arm in arms:
        for run in arm.completed:
            value, protocol = read_value(run.summary, metric, kind)
            if value is None:
                continue
            if not math.isfinite(value):  # inf reverse KL, a NaN: no mean to take; counted and said
                nonfinite[arm.label] = nonfinite.get(arm.label, 0) + 1
                continue
            values.setdefault(arm.label, []).append(value)
            protocol = comparable_protocol(protocol)
            protocols.setdefault(repr(sorted(protocol.items())), (protocol, []))[1].append(str(run.path))
    if len(protocols) > 1:
        groups = "; ".join(", ".join(paths) for _, paths in protocols.values())
        return Scores(metric, kind, {}, {}, refused=f"measured under {len(protocols)} protocols ({groups})")
    protocol = next(iter(protocols.values()))[0] if protocols else {}
    return Scores(metric, kind, values, protocol, nonfinite=nonfinite)


def read_value(summary: Dict[str, Any], metric: str, kind: str) -> Tuple[Optional[float], Dict[str, Any]]:
    if kind == "final":
        value, protocol = summary.get("metrics", {}).get(metric), summary.get("metrics_protocol", {})
    else:
        best = summary.get("metrics_best", {})
        value, protocol = (best.get(metric) or {}).get("value"), best.get("protocol", {})
    try:
        return float(value), protocol  # summary.json writes inf and nan as strings, which float() reads
    except (TypeError, ValueError):
        return None, {}


def measured_metrics(arms: List[Arm]) -> List[str]:
    """The sample-quality metrics the completed runs measured, in SUMMARY_GOALS' order."""
    names = {name for arm in arms for run in arm.completed for name in run.summary.get("metrics", {})}
    return [name for name in SUMMARY_GOALS if name in names]

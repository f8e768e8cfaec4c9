"""``summary.json``: what a run ended as, written atomically into its run directory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping

from gan_lightning.files import atomic_write

FILENAME = "summary.json"
STATUSES = ("completed", "failed", "diverged", "interrupted")


def scalar_metrics(metrics: Mapping[str, Any]) -> Dict[str, float]:
    """Logged values as plain floats (non-finite ones as strings, which JSON can hold)."""
    out = {}
    for key, value in metrics.items():
        number = float(value)
        out[key] = number if math.isfinite(number) else str(number)
    return out


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    return atomic_write(Path(run_dir) / FILENAME, json.dumps(summary, indent=2, sort_keys=False) + "\n")


def read_summary(run_dir: Path) -> Dict[str, Any]:
    return json.loads((Path(run_dir) / FILENAME).read_text())

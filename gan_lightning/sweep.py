"""A Hydra callback that ends every multirun with one line: how many jobs completed, diverged or failed."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lightning.summary import FILENAME, STATUSES, read_summary

log = logging.getLogger("gan_lightning")


def tally(sweep_dir: Path) -> Counter:
    """Job statuses from the summary.json files under a sweep directory; a job without one counts as failed."""
    counts: Counter = Counter()
    for job_dir in sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir() and (p / ".hydra").is_dir()):
        counts[read_summary(job_dir)["status"] if (job_dir / FILENAME).exists() else "failed"] += 1
    return counts


class SweepReport(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        counts = tally(sweep_dir)
        parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        log.info(f"sweep {sweep_dir}: {sum(counts.values())} jobs: {parts or 'none ran'}")

"""A Hydra callback that ends every multirun with one line: how many jobs completed, diverged or failed; the
multirun's exit code then says whether every job completed."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_lightning.errors import USER_ERROR_EXIT
from gan_lightning.runs.summary import ENDED_WELL, FILENAME, STATUSES, read_summary

log = logging.getLogger("gan_lightning")


# Files that mark a folder of a sweep directory as a job's run directory.
JOB_MARKERS = (FILENAME, ".hydra", ".lock")
# The exit code of the last multirun in this process: 0 when every job completed.
last_exit_code = 0
# The stop signal that ended the last multirun's parallel jobs (gan_lightning.sweeps.parallel), if one did.
stop_signal = None
# Set by hydra/launcher=vectorized when a group was refused: its jobs' directories may hold earlier, completed runs
# (left as they were), so their summaries alone would not show it.
refused_exit_code = 0
# Set by hydra/sweeper=search: 0 when the study's trials all completed or were pruned. Its run directories may hold
# runs a stop signal ended, whose parameters ran again as later trials.
search_exit_code: Optional[int] = None


def tally(sweep_dir: Path) -> Counter:
    """Job statuses from the summary.json files under a sweep directory; a job without a readable one counts as failed."""
    counts: Counter = Counter()
    for job_dir in sorted(
        p for p in Path(sweep_dir).iterdir() if p.is_dir() and any((p / m).exists() for m in JOB_MARKERS)
    ):
        try:
            counts[read_summary(job_dir)["status"]] += 1
        except (OSError, ValueError, KeyError):
            counts["failed"] += 1
    return counts


def reset_sweep_outcome() -> None:
    """Forget the last multirun's outcome: a command run in this process again starts afresh."""
    global last_exit_code, stop_signal, refused_exit_code, search_exit_code
    last_exit_code, stop_signal, refused_exit_code, search_exit_code = 0, None, 0, None


def sweep_exit_code() -> int:
    """0 when every job completed; 128 + the signal's number when a stop signal ended the sweep; else 1."""
    return 128 + stop_signal if stop_signal is not None else max(last_exit_code, refused_exit_code)


class SweepReport(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global refused_exit_code, search_exit_code
        refused_exit_code, search_exit_code = 0, None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global last_exit_code
        sweep_dir = Path(config.hydra.sweep.dir)
        if search_exit_code == USER_ERROR_EXIT:  # the search refused its settings before any trial
            last_exit_code = search_exit_code
            return
        if not sweep_dir.is_dir():
            last_exit_code = 1
            return
        counts = tally(sweep_dir)
        last_exit_code = 0 if counts and set(counts) <= set(ENDED_WELL) else 1
        if search_exit_code is not None:
            last_exit_code = search_exit_code
        parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        log.info(f"sweep {sweep_dir}: {sum(counts.values())} jobs: {parts or 'none ran'}")

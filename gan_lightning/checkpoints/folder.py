"""The ``checkpoints/`` folder of a run directory: the names of its files, here and nowhere else. ``last.ckpt`` is the
latest step (a resume continues from it), ``best.ckpt`` the step of a metric's best value, ``step_<N>.ckpt`` the kept
history."""

from __future__ import annotations

from pathlib import Path
from typing import List

FOLDER = "checkpoints"  # in the run directory
LAST = "last.ckpt"  # the latest step: a resume continues from it
BEST = "best.ckpt"  # callbacks.keep_best: the step of the metric's best value
KEPT = "step_*.ckpt"  # callbacks.keep_every_n_steps: step_<N>.ckpt


def checkpoint_folder(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER


def last_checkpoint(run_dir: Path) -> Path:
    return checkpoint_folder(run_dir) / LAST


def best_checkpoint(run_dir: Path) -> Path:
    return checkpoint_folder(run_dir) / BEST


def kept_checkpoint(run_dir: Path, step: int) -> Path:
    return checkpoint_folder(run_dir) / f"step_{step:06d}.ckpt"


def kept_step(path: Path) -> int:
    """The step of a kept checkpoint, from its name (step_000200.ckpt: 200)."""
    return int(Path(path).stem.split("_")[1])


def kept_checkpoints(run_dir: Path) -> List[Path]:
    """The kept step_<N>.ckpt of a run, in step order."""
    return sorted(checkpoint_folder(run_dir).glob(KEPT), key=kept_step)

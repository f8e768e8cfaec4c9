"""Training progress with the numbers a GAN researcher watches: losses, D(x), D(G(z)) and the latest metrics.

In a terminal it is a live rich progress bar; in a non-interactive log (a SLURM output file, a pipe) it
is one plain line every N steps, so the file stays readable instead of filling with redraws.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import pytorch_lightning as pl

from gan_lightning.metrics.evaluation import latest_evaluation, latest_evaluation_step
from gan_lightning.training.periodic import due

log = logging.getLogger("gan_lightning")

SHOWN = ("loss/d", "loss/g", "d/real", "d/fake")


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def measured_at(step: int, evaluated: Optional[int]) -> str:
    """Where an evaluation's values are shown on a later line: the step they were measured at."""
    return f"at step {evaluated}: " if evaluated is not None and evaluated != step else ""


def key_numbers(trainer, step: int) -> str:
    """ "loss/d 1.234 loss/g 0.876 d/real 0.520 d/fake 0.470 | fid 35.2 ..." (a host sync: call it sparingly); the latest
    evaluation's values carry the step they were measured at when it is not this one."""
    metrics = trainer.callback_metrics
    values = " ".join(f"{key} {float(metrics[key]):.3f}" for key in SHOWN if key in metrics)
    evaluated, evaluated_step = latest_evaluation(trainer)[0], latest_evaluation_step(trainer.callbacks)
    extra = " ".join(f"{key} {value:.3f}" for key, value in evaluated.items())
    return " | ".join(part for part in (values, extra and measured_at(step, evaluated_step) + extra) if part)


def spread(values: List[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def members_numbers(members: List[Tuple[Dict[str, float], Dict[str, float], Optional[int]]], step: int) -> str:
    """A vectorized group's line: each value's median and range over the members ("loss/d 1.263 [1.201-1.320]"), the
    latest evaluation's with the step it was measured at."""
    head = f"{len(members)} seeds, median [min-max]:"
    values = " ".join(
        f"{key} {spread([m[0][key] for m in members])}" for key in SHOWN if all(key in m[0] for m in members)
    )
    names = [key for key in members[0][1] if all(key in m[1] for m in members)]
    extra = " ".join(f"{key} {spread([m[1][key] for m in members])}" for key in names)
    return " | ".join(part for part in (f"{head} {values}", extra and measured_at(step, members[0][2]) + extra) if part)


class ProgressLog(pl.Callback):
    """``members(pl_module)``: for a vectorized group, each member's latest values, latest evaluation and its step."""

    def __init__(
        self,
        every_n_steps: int,
        max_steps: int,
        live: Optional[bool] = None,
        members: Optional[Callable[[], list]] = None,
    ):
        self.every_n_steps, self.max_steps, self.members = every_n_steps, max_steps, members
        self.live = sys.stderr.isatty() if live is None else live
        self.started_at = self.started_step = None
        self.bar = self.task = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.started_at, self.started_step = time.perf_counter(), pl_module.steps_done
        if self.live and self.every_n_steps > 0 and trainer.is_global_zero:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("step"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn(), TextColumn("{task.fields[numbers]}"),
                console=Console(stderr=True),
            )  # fmt: skip
            self.task = self.bar.add_task("train", total=self.max_steps, completed=pl_module.steps_done, numbers="")
            self.bar.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not trainer.is_global_zero:
            return
        step = pl_module.steps_done
        if self.bar is not None:
            self.bar.update(self.task, completed=step)
        if not due(step, self.every_n_steps):
            return
        numbers = members_numbers(self.members(pl_module), step) if self.members else key_numbers(trainer, step)
        if self.bar is not None:
            self.bar.update(self.task, numbers=numbers)
            return
        rate = (step - self.started_step) / max(time.perf_counter() - self.started_at, 1e-9)
        eta = format_duration((self.max_steps - step) / rate) if rate > 0 else "?"
        log.info(
            " | ".join(
                part for part in (f"step {step}/{self.max_steps}", numbers, f"{rate:.1f} steps/s", f"eta {eta}") if part
            )
        )

    def on_train_end(self, trainer, pl_module) -> None:
        self.stop()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.stop()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

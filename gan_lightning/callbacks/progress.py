"""Training progress with the numbers a GAN researcher watches: losses, D(x), D(G(z)) and the latest metrics.

In a terminal it is a live rich progress bar; in a non-interactive log (a SLURM output file, a pipe) it
is one plain line every N steps, so the file stays readable instead of filling with redraws.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Optional

import pytorch_lightning as pl

from gan_lightning.metrics.evaluation import latest_evaluation
from gan_lightning.training.periodic import due

log = logging.getLogger("gan_lightning")

SHOWN = ("loss/d", "loss/g", "d/real", "d/fake")


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def key_numbers(trainer) -> str:
    """ "loss/d 1.234 loss/g 0.876 d/real 0.520 d/fake 0.470 | fid 35.2 ..." (a host sync: call it sparingly)."""
    metrics = trainer.callback_metrics
    values = " ".join(f"{key} {float(metrics[key]):.3f}" for key in SHOWN if key in metrics)
    extra = " ".join(f"{key} {value:.3f}" for key, value in latest_evaluation(trainer)[0].items())
    return " | ".join(part for part in (values, extra) if part)


class ProgressLog(pl.Callback):
    def __init__(self, every_n_steps: int, max_steps: int, live: Optional[bool] = None):
        self.every_n_steps, self.max_steps = every_n_steps, max_steps
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
        if self.bar is not None:
            self.bar.update(self.task, numbers=key_numbers(trainer))
            return
        rate = (step - self.started_step) / max(time.perf_counter() - self.started_at, 1e-9)
        eta = format_duration((self.max_steps - step) / rate) if rate > 0 else "?"
        log.info(
            " | ".join(
                part
                for part in (f"step {step}/{self.max_steps}", key_numbers(trainer), f"{rate:.1f} steps/s", f"eta {eta}")
                if part
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

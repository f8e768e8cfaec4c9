"""One plain progress line every N steps: readable in a terminal and in a SLURM output file alike."""

from __future__ import annotations

import logging
import time

import pytorch_lightning as pl

from gan_lightning.callbacks.schedule import due

log = logging.getLogger("gan_lightning")

SHOWN = ("loss/d", "loss/g", "d/real", "d/fake")


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


class ProgressLog(pl.Callback):
    def __init__(self, every_n_steps: int, max_steps: int):
        self.every_n_steps, self.max_steps = every_n_steps, max_steps
        self.started_at = self.started_step = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.started_at, self.started_step = time.perf_counter(), pl_module.steps_done

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not (trainer.is_global_zero and due(pl_module.steps_done, self.every_n_steps)):
            return
        step = pl_module.steps_done
        rate = (step - self.started_step) / max(time.perf_counter() - self.started_at, 1e-9)
        metrics = trainer.callback_metrics
        values = " ".join(f"{key} {float(metrics[key]):.3f}" for key in SHOWN if key in metrics)
        extra = " ".join(f"{key} {float(value):.3f}" for key, value in metrics.items() if key.startswith("metrics/"))
        eta = format_duration((self.max_steps - step) / rate) if rate > 0 else "?"
        log.info(f"step {step}/{self.max_steps} | {values} {extra}| {rate:.1f} steps/s | eta {eta}".replace("  ", " "))

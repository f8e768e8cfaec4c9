"""Checkpoints in the run directory: ``checkpoints/last.ckpt`` every N steps and at the end, and a history beside it:
``step_<N>.ckpt`` every ``keep_every_n_steps`` steps (the latest ``keep_limit``) and ``best.ckpt`` at the best value
of a metric, in the folder layout of ``folder``."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from gan_lightning.checkpoints.folder import best_checkpoint, kept_checkpoint, kept_checkpoints, last_checkpoint
from gan_lightning.errors import Diverged
from gan_lightning.files import atomic_write
from gan_lightning.metrics.evaluation import Evaluation
from gan_lightning.metrics.goals import better
from gan_lightning.training.periodic import Periodic, due
from gan_lightning.training.state import write_run


@dataclass
class History:
    """Which checkpoints are kept beside last.ckpt (callbacks.keep_every_n_steps, keep_limit, keep_best)."""

    every_n_steps: int = 0
    limit: Optional[int] = None
    best_metric: Optional[str] = None


class PeriodicCheckpoint(Periodic):
    """Saves through Lightning (atomic writes), and keeps the checkpoint history ``history`` asks for.

    The loggers write out what they hold before every checkpoint: a checkpoint of step N is never on disk
    while rows of steps before N are not, so a run resumed from it continues its logs without a gap. The best
    value so far is part of every checkpoint (this callback's state), so a resumed run compares with it.
    """

    def __init__(self, run_dir: Path, every_n_steps: int, history: Optional[History] = None, run_config: Optional[Dict[str, Any]] = None,
                 run_id: Optional[str] = None):  # fmt: skip
        super().__init__(every_n_steps)
        self.run_dir, self.history = Path(run_dir), history or History()
        self.run_config = run_config or {}
        self.run_id = run_id
        self.best: Optional[Dict[str, float]] = None  # {"value", "step"} of history.best_metric's best so far

    def state_dict(self) -> Dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.best = state_dict.get("best")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: Dict[str, Any]) -> None:
        write_run(checkpoint, self.run_config, self.run_id)

    @property
    def last_path(self) -> Path:
        return last_checkpoint(self.run_dir)

    @property
    def best_path(self) -> Path:
        return best_checkpoint(self.run_dir)

    def is_due(self, steps_done: int) -> bool:
        return super().is_due(steps_done) or due(steps_done, self.history.every_n_steps)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.keep_if_best(trainer, pl_module)  # first: last.ckpt of this step then holds the best value so far
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def fire(self, trainer, pl_module) -> None:
        bad = pl_module.first_nonfinite_weight()
        if bad is not None:  # keep the last good checkpoint rather than overwrite it with NaNs
            raise Diverged(pl_module.steps_done, f"weight {bad}", float("nan"))
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(self.last_path, weights_only=False)
        if not trainer.is_global_zero:
            return
        if due(pl_module.steps_done, self.history.every_n_steps):
            self.keep_step(pl_module.steps_done)
        for logger in trainer.loggers:
            if getattr(logger, "upload_checkpoints", False):
                logger.upload_checkpoint(self.last_path, pl_module.steps_done)

    def keep_step(self, step: int) -> None:
        """Copy last.ckpt to step_<N>.ckpt (atomically), then drop the oldest beyond history.limit."""
        with open(self.last_path, "rb") as source:
            atomic_write(kept_checkpoint(self.run_dir, step), lambda target: shutil.copyfileobj(source, target))
        if self.history.limit is not None:
            kept = kept_checkpoints(self.run_dir)
            for old in kept[: max(len(kept) - self.history.limit, 0)]:
                old.unlink()

    def keep_if_best(self, trainer, pl_module) -> None:
        """Write best.ckpt when this step's evaluation gave history.best_metric its best value so far."""
        metric = self.history.best_metric
        if metric is None:
            return
        value = None
        if trainer.is_global_zero:  # metrics are measured on rank 0
            evaluation = next((c for c in trainer.callbacks if isinstance(c, Evaluation)), None)
            if evaluation is not None and evaluation.last_fired_step == pl_module.steps_done:
                value = evaluation.latest.get(metric)
        value = trainer.strategy.broadcast(value, src=0)  # saving is collective: every process decides alike
        if value is None or not math.isfinite(value) or not self.improves(value):
            return
        self.best = {"value": float(value), "step": pl_module.steps_done}
        trainer.save_checkpoint(self.best_path, weights_only=False)

    def improves(self, value: float) -> bool:
        return self.best is None or better(self.history.best_metric, value, self.best["value"])

    def best_record(self) -> Optional[Dict[str, Any]]:
        """For summary.json: the metric, its best value, the step and the checkpoint that holds it."""
        if self.history.best_metric is None or self.best is None:
            return None
        return {"metric": self.history.best_metric, **self.best, "checkpoint": str(self.best_path)}

    def save_now(self, trainer, pl_module) -> None:
        """A checkpoint at the current step, unless this step's is written already."""
        if pl_module.steps_done != self.last_fired_step:
            self.fire_now(trainer, pl_module)

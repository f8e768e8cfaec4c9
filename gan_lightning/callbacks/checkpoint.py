"""Checkpoints in the run directory: ``checkpoints/last.ckpt`` every N steps and at the end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Optional

from gan_lightning.periodic import Periodic
from gan_lightning.checkpoints import write_run
from gan_lightning.errors import Diverged


class PeriodicCheckpoint(Periodic):
    """Saves through Lightning (atomic writes); with ``keep`` also keeps ``step_<N>.ckpt`` copies.

    The loggers write out what they hold before every checkpoint: a checkpoint of step N is never on disk
    while rows of steps before N are not, so a run resumed from it continues its logs without a gap.
    """

    def __init__(self, folder: Path, every_n_steps: int, keep: bool, run_config: Optional[Dict[str, Any]] = None, run_id: Optional[str] = None):
        super().__init__(every_n_steps)
        self.folder, self.keep = Path(folder), keep
        self.run_config = run_config or {}
        self.run_id = run_id

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: Dict[str, Any]) -> None:
        write_run(checkpoint, self.run_config, self.run_id)

    @property
    def last_path(self) -> Path:
        return self.folder / "last.ckpt"

    def fire(self, trainer, pl_module) -> None:
        bad = pl_module.first_nonfinite_weight()
        if bad is not None:  # keep the last good checkpoint rather than overwrite it with NaNs
            raise Diverged(pl_module.steps_done, f"weight {bad}", float("nan"))
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(self.last_path, weights_only=False)
        if not trainer.is_global_zero:
            return
        if self.keep:
            shutil.copyfile(self.last_path, self.folder / f"step_{pl_module.steps_done:06d}.ckpt")
        for logger in trainer.loggers:
            if getattr(logger, "upload_checkpoints", False):
                logger.upload_checkpoint(self.last_path, pl_module.steps_done)

    def save_now(self, trainer, pl_module) -> None:
        """A checkpoint at the current step, unless this step's is written already."""
        if pl_module.steps_done != self.last_fired_step:
            self.fire_now(trainer, pl_module)

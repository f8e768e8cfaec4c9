"""Checkpoints in the run directory: ``checkpoints/last.ckpt`` every N steps and at the end."""

from __future__ import annotations

import shutil
from pathlib import Path

from gan_lightning.callbacks.schedule import Periodic
from gan_lightning.errors import Diverged


class PeriodicCheckpoint(Periodic):
    """Saves through Lightning (atomic writes); with ``keep`` also keeps ``step_<N>.ckpt`` copies."""

    def __init__(self, folder: Path, every_n_steps: int, keep: bool):
        super().__init__(every_n_steps)
        self.folder, self.keep = Path(folder), keep

    @property
    def last_path(self) -> Path:
        return self.folder / "last.ckpt"

    def fire(self, trainer, pl_module) -> None:
        bad = pl_module.first_nonfinite_weight()
        if bad is not None:  # keep the last good checkpoint rather than overwrite it with NaNs
            raise Diverged(pl_module.steps_done, f"weight {bad}", float("nan"))
        trainer.save_checkpoint(self.last_path, weights_only=False)
        if self.keep and trainer.is_global_zero:
            shutil.copyfile(self.last_path, self.folder / f"step_{pl_module.steps_done:06d}.ckpt")

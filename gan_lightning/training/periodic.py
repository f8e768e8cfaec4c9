"""When periodic callbacks fire: every N completed training steps, and once more at the end."""

from __future__ import annotations

import pytorch_lightning as pl


def due(steps_done: int, every_n_steps: int) -> bool:
    return every_n_steps > 0 and steps_done > 0 and steps_done % every_n_steps == 0


class Periodic(pl.Callback):
    """Calls ``fire`` every ``every_n_steps`` training steps (0: never), at the last step and whenever training ends."""

    def __init__(self, every_n_steps: int):
        self.every_n_steps = every_n_steps
        self.last_fired_step = -1

    def is_due(self, steps_done: int) -> bool:
        return due(steps_done, self.every_n_steps)

    def fires_after_step(self, pl_module) -> bool:
        """Whether the step just completed makes it fire: a multiple of every_n_steps, or the last."""
        return self.is_due(pl_module.steps_done) or pl_module.steps_done == pl_module.max_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.fires_after_step(pl_module):
            self.fire_now(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if pl_module.steps_done != self.last_fired_step:
            self.fire_now(trainer, pl_module)

    def fire_now(self, trainer, pl_module) -> None:
        self.last_fired_step = pl_module.steps_done
        pl_module.check_losses()  # nothing is saved, drawn or evaluated from weights a non-finite loss spoilt
        self.fire(trainer, pl_module)

    def fire(self, trainer, pl_module) -> None:
        raise NotImplementedError

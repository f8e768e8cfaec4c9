"""The Lightning side of adaptive augmentation: when ADA's p moves. gan_lightning/augment/ada.py holds the pipeline
and the controller's arithmetic without Lightning (and imports torch lazily), so that the config group's checks
read its transform names without the seconds either takes to import."""

from __future__ import annotations

import pytorch_lightning as pl


class AdaptiveAugmentControl(pl.Callback):
    """Moves the GAN's ADA p once an interval of steps is complete (``AdaptiveAugment.adjust``), from the reals of every
    process of a data-parallel run: before the next step, so that the p logged with a step and kept in its checkpoint
    is the p that step trained with, and a resumed run makes the adjustment the uninterrupted one would have made."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        reals = batch[0] if isinstance(batch, (tuple, list)) else batch
        processes = pl_module.processes
        reduce = (lambda tensor: trainer.strategy.reduce(tensor, reduce_op="sum")) if processes > 1 else None
        pl_module.losses.adaptive.adjust(pl_module.steps_done, len(reals) * processes, reduce)

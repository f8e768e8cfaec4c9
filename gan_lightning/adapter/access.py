"""State of Lightning's objects that only their private attributes reveal."""

from __future__ import annotations

from typing import Any, Optional


def attached_trainer(module: Any) -> Optional[Any]:
    """The trainer a LightningModule is attached to, or None (``module.trainer`` raises when there is none)."""
    return module._trainer


def wandb_run_started(logger: Any) -> bool:
    """Whether a WandbLogger has started its W&B run (reading ``logger.experiment`` would start one)."""
    return logger._experiment is not None


def drop_wandb_init_setting(logger: Any, name: str) -> None:
    """Leave ``name`` out of what a WandbLogger passes to ``wandb.init``: Lightning passes ``anonymous`` always, and
    W&B 0.31 warns about it whatever its value."""
    logger._wandb_init.pop(name, None)


def attach(module: Any, trainer: Any) -> None:
    """Attach a LightningModule to ``trainer`` without the ``trainer`` setter, which accepts only a pl.Trainer (a
    vectorized group's member module is attached to its MemberTrainer)."""
    module._trainer = trainer


def place_like(module: Any, other: Any) -> None:
    """Record ``other``'s device and dtype as ``module``'s, for a module whose tensors are views of ``other``'s
    (LightningModule.device and dtype are updated only by its own .to())."""
    module._device, module._dtype = other.device, other.dtype


def checkpoint_now(trainer: Any) -> dict:
    """The checkpoint ``trainer.save_checkpoint`` would write now, as a dict (callbacks' and module's hooks run)."""
    return trainer._checkpoint_connector.dump_checkpoint(weights_only=False)

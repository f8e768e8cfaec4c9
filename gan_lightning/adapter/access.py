"""State of Lightning's objects that only their private attributes reveal."""

from __future__ import annotations

from typing import Any, Optional


def attached_trainer(module: Any) -> Optional[Any]:
    """The trainer a LightningModule is attached to, or None (``module.trainer`` raises when there is none)."""
    return module._trainer


def wandb_run_started(logger: Any) -> bool:
    """Whether a WandbLogger has started its W&B run (reading ``logger.experiment`` would start one)."""
    return logger._experiment is not None

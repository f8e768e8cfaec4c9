"""A LightningModule base whose per-step work skips Lightning's machinery wherever that machinery adds nothing.

A small GAN's training step takes a few milliseconds; around it, Lightning dispatches a dozen hooks to every
callback, asks three batch hooks whether anyone implements them, and assigns bookkeeping attributes through
nn.Module's checks. Each shortcut below applies only where it provably changes nothing but speed, and
``fast_path=False`` (``trainer.fast_path=false``) turns all of them off: the module then runs plain Lightning
and trains the same weights, bit for bit (tests/test_adapter.py).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import Tensor

from gan_lightning.adapter.access import attached_trainer
from gan_lightning.adapter.runtime import restore_cuda_check

# The hooks Lightning's manual_backward and optimizer step exist to call (besides the strategy's own work).
UPDATE_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
# The hooks a batch passes through between the data loader and the training step.
BATCH_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")
# Values that can never be a parameter, buffer or submodule.
PLAIN_VALUE_TYPES = (bool, int, float, str, type(None))


def direct_updates_possible(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether backward passes and optimizer steps may call torch directly, as a hand-written loop does.

    On one device, in float32 or bf16-mixed, Lightning's manual_backward and optimizer step add nothing but
    calls of UPDATE_HOOKS, and each call visits every callback: 0.3 ms per training step of a small model.
    (bf16-mixed's autocast is around the whole training step, backward passes and steps included, either way.)
    Where no callback and not the module implement those hooks, skipping them changes nothing but speed.
    """
    if type(trainer.strategy) is not SingleDeviceStrategy:
        return False  # a strategy that synchronises gradients
    plugin = trainer.precision_plugin
    if not (type(plugin) is Precision or (type(plugin) is MixedPrecision and plugin.scaler is None)):
        return False  # a plugin that scales the loss (16-mixed) or casts the networks (bf16-true, 64-true)
    if any(is_overridden(hook, module, pl.LightningModule) for hook in (*UPDATE_HOOKS, "backward")):
        return False
    return not any(
        is_overridden(hook, callback, pl.Callback) for callback in trainer.callbacks for hook in UPDATE_HOOKS
    )


def batches_pass_unchanged(trainer: pl.Trainer, module: pl.LightningModule) -> bool:
    """Whether neither the module nor the data module implements a batch hook: Lightning's own hooks then
    return the batch as it is, and move it only when it is not on the training device yet."""
    owners = [module] if trainer.datamodule is None else [module, trainer.datamodule]
    return not any(is_overridden(hook, owner) for owner in owners for hook in BATCH_HOOKS)


def on_device(batch: Any, device: torch.device) -> bool:
    """Whether ``batch`` (a tensor, or a tuple or list of tensors) is on ``device`` already."""
    tensors = batch if isinstance(batch, (tuple, list)) else (batch,)
    return all(isinstance(t, Tensor) and t.device == device for t in tensors)


class FastPathModule(pl.LightningModule):
    """A LightningModule with manual optimization whose updates go through ``backward_pass`` and ``step_optimizer``.

    With ``fast_path`` (decided again at every fit, from what the trainer, its callbacks and the module implement):
    backward passes and optimizer steps call torch directly where no hook would run around them; batches already
    on the device skip the three batch hooks where none is implemented; plain attributes are assigned without
    nn.Module's checks.
    """

    def __init__(self, fast_path: bool = True):
        super().__init__()
        self.automatic_optimization = False
        self.fast_path = fast_path
        self.direct_updates = False  # backward passes and optimizer steps bypass Lightning's wrappers
        self.batches_unchanged = False  # no batch hook is implemented: batches on the device pass as they are

    def __setattr__(self, name: str, value: Any) -> None:
        # nn.Module checks every assigned value against Parameter, Module and Tensor (about 1 µs), and
        # Lightning assigns _current_fx_name twice around each of the dozen hook calls of a step. A plain value
        # replacing a plain attribute (one in __dict__, so no parameter, buffer or submodule) needs none of it.
        if type(value) in PLAIN_VALUE_TYPES and name in self.__dict__ and self.__dict__.get("fast_path"):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def on_train_start(self) -> None:
        if self.fast_path:
            restore_cuda_check()
        self.direct_updates = self.fast_path and direct_updates_possible(self.trainer, self)
        self.batches_unchanged = self.fast_path and batches_pass_unchanged(self.trainer, self)

    # Before every step Lightning asks, for each of the three batch hooks, whether the module or the data
    # module implements it, and calls it through its hook dispatch: 35 µs per step. Where none is implemented,
    # a batch already on the device needs none of it (in-memory data sets are held there).
    def _on_before_batch_transfer(self, batch: Any, dataloader_idx: int = 0) -> Any:
        return batch if self.batches_unchanged else super()._on_before_batch_transfer(batch, dataloader_idx)

    def _apply_batch_transfer_handler(
        self, batch: Any, device: Optional[torch.device] = None, dataloader_idx: int = 0
    ) -> Any:
        if self.batches_unchanged and on_device(batch, device or self.device):
            return batch
        return super()._apply_batch_transfer_handler(batch, device, dataloader_idx)

    def backward_pass(self, loss: Tensor, **backward_options) -> None:
        """``loss.backward(**backward_options)``, through Lightning's manual_backward unless nothing would hook it."""
        if self.direct_updates:
            loss.backward(**backward_options)
        else:
            self.manual_backward(loss, **backward_options)

    @staticmethod
    def count_optimizer_step(optimizer) -> None:
        """Lightning's count of a step of ``optimizer`` that ran without a call of it (a replayed CUDA graph's): what
        its wrapper does around a step, so that trainer.global_step counts the step."""
        optimizer._on_before_step()
        optimizer._on_after_step()

    def step_optimizer(self, optimizer) -> None:
        """A step of ``optimizer`` (Lightning's wrapper); Lightning counts it in trainer.global_step either way."""
        if self.direct_updates:
            optimizer._on_before_step()
            optimizer.optimizer.step()
            optimizer._on_after_step()
        else:
            optimizer.step()

    def is_logging_step(self, steps_done: int, max_steps: Optional[int]) -> bool:
        """Whether the training step after ``steps_done`` reaches the loggers: every ``log_every_n_steps``-th, and the
        last. Only those steps compute and hand over their values."""
        trainer = attached_trainer(self)
        if trainer is None:
            return True
        return (steps_done + 1) % max(trainer.log_every_n_steps, 1) == 0 or steps_done + 1 == max_steps

    def log_values(self, values: Dict[str, float], step: int) -> None:
        """Hand ``values`` to the loggers at ``step`` (with the epoch, as Lightning logs them) and to the trainer's
        callback_metrics: the one way the module's values reach them. ``self.log`` would do the same at the end of the
        step after a torchmetrics update per value, 2.4 ms per logging step: more than a small model's whole step."""
        trainer = attached_trainer(self)
        if trainer is None:
            return
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in values.items()})
        for logger in trainer.loggers:
            logger.log_metrics({**values, "epoch": trainer.current_epoch}, step=step)
            logger.save()

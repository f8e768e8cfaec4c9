"""Lightning's training loop with the questions it asks before every step answered once per epoch.

Before every step Lightning's epoch loop reads the training step's signature (does it take ``batch_idx``?)
and asks the trainer whether validation is enabled; every hook call enters the profiler's context. None of
it changes during a run, and together it costs about 45 µs per step on a 2-core VM: almost 1 % of a
small model's 5 ms step.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.loops.training_epoch_loop import _TrainingEpochLoop
from pytorch_lightning.profilers import AdvancedProfiler, Profiler, SimpleProfiler
from pytorch_lightning.utilities.signature_utils import is_param_in_hook_signature

# trainer.profiler (its allowed names: gan_lightning.config.PROFILERS): Lightning's profilers.
PROFILERS = {"simple": SimpleProfiler, "advanced": AdvancedProfiler}


class Unprofiled(Profiler):
    """The profiler of a run that asks for none. Lightning's stand-in (PassThroughProfiler) builds a generator
    context for each of the dozen and more hook calls of a step; this one hands out one shared null context."""

    _nothing = nullcontext()

    def start(self, action_name: str) -> None:
        pass

    def stop(self, action_name: str) -> None:
        pass

    def profile(self, action_name: str) -> nullcontext:
        return self._nothing


def build_profiler(name: Optional[str], run_dir: Path, fast_path: bool = True) -> Optional[Profiler]:
    """``trainer.profiler``: null for none (Lightning's own stand-in without the fast path), or a Lightning profiler
    whose report goes to ``run_dir``."""
    if name is None:
        return Unprofiled() if fast_path else None
    return PROFILERS[name](dirpath=str(run_dir), filename="profile")


class SettledAnswersEpochLoop(_TrainingEpochLoop):
    """Lightning's epoch loop, reading the training step's signature and whether validation is enabled when
    an epoch starts instead of before every step. Lightning's own code decides what each answer means."""

    def on_run_start(self, data_fetcher) -> None:
        super().on_run_start(data_fetcher)
        self.validation_enabled = self.trainer.enable_validation
        # Lightning's rule: a training step with two arguments after self takes the batch and its index.
        self.step_takes_batch_idx = is_param_in_hook_signature(
            self.trainer.lightning_module.training_step, "batch_idx", min_args=2
        )

    def _should_check_val_fx(self, data_fetcher) -> bool:
        return self.validation_enabled and super()._should_check_val_fx(data_fetcher)

    def _build_kwargs(self, kwargs: OrderedDict, batch: Any, batch_idx: int) -> OrderedDict:
        kwargs["batch"] = batch
        if self.step_takes_batch_idx:
            kwargs["batch_idx"] = batch_idx
        return kwargs


def settle_per_step_questions(trainer: pl.Trainer) -> pl.Trainer:
    """``trainer`` with SettledAnswersEpochLoop in place of the epoch loop it was built with (before any fit)."""
    built = trainer.fit_loop.epoch_loop
    trainer.fit_loop.epoch_loop = SettledAnswersEpochLoop(trainer, min_steps=built.min_steps, max_steps=built.max_steps)
    return trainer

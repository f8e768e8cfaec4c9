"""What a non-finite loss does to a run (``trainer.on_nan``).

- ``stop`` (``StopOnNonFinite``): the run ends as diverged at the first non-finite loss. Losses are read back at
  checks, not after every update (a host read per update would make the CPU wait for the GPU's queue to drain twice
  a step); the weights a non-finite loss spoils are never checkpointed, since every checkpoint, sample grid and
  evaluation checks first. A captured step records them on the GPU instead (``steps.CapturedSteps.watch``).
- ``skip`` (``SkipNonFinite``): an update whose loss is not finite is dropped and counted; past
  ``trainer.max_skipped_fraction`` of the updates, the run ends as diverged.

Under DDP every process decides alike: all stop at the earliest divergence of any, all skip an update together.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor

from gan_lightning.errors import Diverged
from gan_lightning.training.distributed import Agreement

# on_nan=skip judges the fraction of dropped updates once this many updates were attempted (and at the end).
MIN_UPDATES_JUDGED = 100


class StopOnNonFinite:
    def __init__(self):
        self.across = Agreement()  # the processes' (set at setup under DDP)
        self.pending: List[Tuple[int, str, Tensor]] = []  # (step, name, loss) of each update since the last check
        self.skipped = 0  # never: a non-finite loss stops the run

    def admits(self, steps, step: int, name: str, loss: Tensor) -> bool:
        """Record the update's loss for the next check (on the device, where ``steps`` is capturing it); the update
        goes ahead."""
        if steps.capturing:
            steps.watch(name, loss)
        else:
            self.pending.append((step, name, loss.detach()))
        return True

    def check_losses(self, steps) -> None:
        """Raise Diverged for the first non-finite loss since the last check, on any process: every process checks at
        the same steps and stops at the earliest divergence."""
        pending, self.pending = self.pending, []
        if pending:
            self.raise_first_nonfinite(pending)
        found = steps.first_nonfinite()  # captured steps ran after any eager step pending here
        if found is not None:
            raise Diverged(*found)

    def raise_first_nonfinite(self, pending: List[Tuple[int, str, Tensor]]) -> None:
        # One host read; a loss per member (gan_lightning.sweeps.vectorized) is finite when every member's is.
        finite = (
            torch.isfinite(torch.stack([loss.float() for _, _, loss in pending]).reshape(len(pending), -1))
            .all(dim=1)
            .tolist()
        )
        first = finite.index(False) if False in finite else len(pending)
        earliest = self.across.smallest(first, pending[0][2].device)
        if earliest == len(pending):
            return
        step, name, loss = pending[earliest]
        if earliest != first:
            raise Diverged(step, f"{name} of another process", float("nan"))
        raise Diverged(step, name, loss.item())

    def check_skipped(self, steps_done: int, updates_per_step: int, final: bool) -> None:
        pass


class SkipNonFinite:
    def __init__(self, max_skipped_fraction: float):
        self.max_skipped_fraction = max_skipped_fraction
        self.across = Agreement()  # the processes' (set at setup under DDP)
        self.skipped = 0  # updates dropped so far (saved in checkpoints)

    def admits(self, steps, step: int, name: str, loss: Tensor) -> bool:
        """Whether the update goes ahead: its loss is finite on every process (one host read per update)."""
        if self.all_finite(loss):
            return True
        self.skipped += 1
        return False

    def all_finite(self, loss: Tensor) -> bool:
        """Whether the loss is finite on every process: all must skip together, or the next gradient all-reduce waits
        for a process that skipped (one small all-reduce per update under DDP)."""
        finite = math.isfinite(loss.item())  # one host read, as bool(torch.isfinite(loss)), without the extra kernel
        return not self.across.any(not finite)

    def check_losses(self, steps) -> None:
        pass  # every loss was read before its update

    def check_skipped(self, steps_done: int, updates_per_step: int, final: bool) -> None:
        """Raise Diverged once more than max_skipped_fraction of the updates so far were dropped (judged from
        MIN_UPDATES_JUDGED updates on, and always at the end)."""
        attempted = steps_done * updates_per_step
        if attempted == 0 or (attempted < MIN_UPDATES_JUDGED and not final):
            return
        fraction = self.skipped / attempted
        if fraction > self.max_skipped_fraction:
            what = f"fraction of updates dropped by trainer.on_nan=skip ({self.skipped} of {attempted}; trainer.max_skipped_fraction={self.max_skipped_fraction})"
            raise Diverged(steps_done, what, round(fraction, 4))


def nonfinite_policy(on_nan: str, max_skipped_fraction: float) -> StopOnNonFinite | SkipNonFinite:
    return SkipNonFinite(max_skipped_fraction) if on_nan == "skip" else StopOnNonFinite()

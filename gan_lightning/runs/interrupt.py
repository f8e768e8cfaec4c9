"""Stop signals (a scheduler's SIGTERM, Ctrl-C, SLURM's warning signals): finish the step, checkpoint it, exit.

A signal only marks the run (a signal received while the run started, ``gan_lightning.runs.start_up_signals``, too); at the end of the current training step the run saves a checkpoint at that
step and raises ``Interrupted``, which ends it with status ``interrupted`` and exit code 128 + the signal's
number, as a shell reports a process the signal ended. A rerun resumes from that step. Under DDP the
processes agree on the step to stop at, since saving a checkpoint is collective. A handler that was in
place before (submitit's requeue on SIGUSR2) runs after the checkpoint. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Iterator, Optional

import pytorch_lightning as pl
import torch

from gan_lightning.errors import Diverged, Interrupted, UserError
from gan_lightning.runs.start_up_signals import SignalRecorder, take_over

if TYPE_CHECKING:
    from gan_lightning.checkpoints.saving import PeriodicCheckpoint

log = logging.getLogger("gan_lightning")

# Under DDP the processes compare their signals (one small all-reduce) every this many steps.
AGREE_EVERY_N_STEPS = 10


class StopOnSignal(pl.Callback, SignalRecorder):
    stopping = "stopping after this step, with a checkpoint"

    def __init__(self, checkpoint: PeriodicCheckpoint):
        SignalRecorder.__init__(self)
        self.checkpoint = checkpoint

    def install(self) -> None:  # type: ignore[override]
        """Handle the stop signals from now on, in place of the start-up recorder (before fit: a signal during
        set-up, or received while the run started, is kept for the first step)."""
        received, before_the_run = take_over()
        SignalRecorder.install(self, before_the_run)
        if self.received is None:
            self.received = received

    @contextlib.contextmanager
    def installed(self, pl_module) -> Iterator[None]:
        """The signals handled while the block trains ``pl_module``. A second Ctrl-C, which Lightning turns into
        SystemExit(1), leaves the block as ``Interrupted`` without a checkpoint."""
        self.install()
        try:
            yield
        except BaseException as error:
            if self.received is not None and not isinstance(error, (Interrupted, UserError, Diverged)):
                raise Interrupted(self.received, pl_module.steps_done, saved=False) from error
            raise
        finally:
            self.release()

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning installs its own SIGTERM handler when fit starts (it ends the process with exit code 0,
        # without a checkpoint); this one takes its place.
        self.reclaim(signal.SIGTERM)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        signum = self.agreed_signal(trainer, pl_module)
        if signum is None:
            return
        self.checkpoint.save_now(trainer, pl_module)
        chained = self.previous.get(signum)
        if callable(chained) and signum != signal.SIGINT:
            try:
                chained(signum, None)  # for example submitit's requeue, now that the checkpoint is written
            except (
                BaseException
            ) as error:  # submitit ends the process after a requeue: Interrupted does it with a status
                log.info(f"the handler in place before the run ended with {type(error).__name__}: {error}")
        raise Interrupted(signum, pl_module.steps_done, saved=True)

    def agreed_signal(self, trainer, pl_module) -> Optional[int]:
        if pl_module.processes == 1:
            return self.received
        if pl_module.steps_done % AGREE_EVERY_N_STEPS:
            return None
        # The largest signal number any process received (0: none); every process stops at this step.
        mine = torch.tensor(self.received or 0, device=pl_module.device)
        agreed = int(trainer.strategy.reduce(mine, reduce_op="max"))
        return agreed or None

"""``hydra/launcher=parallel``: the jobs of a multirun side by side on this machine.

The jobs run ``hydra.launcher.n_jobs`` at a time in worker processes of hydra-joblib-launcher (joblib's loky
backend); each leaves what a job of the basic launcher leaves. What a job does differently is here:

- threads: with ``trainer.num_threads=null`` a job takes its share of the cores (cores // n_jobs), not
  PyTorch's default of every core, which n_jobs processes would oversubscribe;
- GPUs: a job with ``trainer.devices=1`` on a machine with several GPUs takes GPU ``job number % GPUs``
  (round-robin); with more jobs than GPUs, jobs share them;
- stopping: a stop signal lets each running job checkpoint its step and record ``interrupted``, as a job of
  the basic launcher does, and no further job starts. Ctrl-C reaches every process of the sweep; a SIGINT
  or SIGTERM sent to the sweep's process alone (``kill PID``, a scheduler) is passed on to the running jobs
  as SIGTERM (a job stops on the first stop signal it receives, so one that had the Ctrl-C too stops once).
  The sweep's process marks the sweep as stopping (the STOPPING file in the sweep directory) and waits for
  its jobs; a second Ctrl-C abandons them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gan_lightning.runs.jobs import available_cores, is_parallel, stopping_file
from gan_lightning.runs.start_up_signals import SignalRecorder

log = logging.getLogger("gan_lightning")

PARENT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def default_jobs(num_threads: Optional[int]) -> int:
    """Jobs at a time when hydra.launcher.n_jobs is not given: as many as the cores hold at trainer.num_threads each."""
    return max(1, available_cores() // (num_threads or 1))


OmegaConf.register_new_resolver("gan_lightning.parallel_jobs", default_jobs, replace=True)


class ParallelStop(Callback, SignalRecorder):
    """In the sweep's process of a parallel multirun: the first stop signal marks the sweep as stopping and waits
    for the running jobs, which received it too (or see the mark before they train)."""

    def __init__(self) -> None:
        SignalRecorder.__init__(self)
        self.sweep_dir: Optional[Path] = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from gan_lightning.sweeps import report

        report.stop_signal = None
        if not is_parallel(config.hydra):
            return
        self.sweep_dir = Path(config.hydra.sweep.dir)
        stopping_file(self.sweep_dir).unlink(missing_ok=True)  # left by an earlier, stopped run of this sweep
        self.received = None
        self.install(signums=PARENT_SIGNALS)

    def handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: abandon the jobs
        if self.received is None:
            self.received = signum
            self.sweep_dir.mkdir(parents=True, exist_ok=True)
            stopping_file(self.sweep_dir).write_text(f"{signal.Signals(signum).name}\n")
            log.warning(
                f"received {signal.Signals(signum).name}: the running jobs stop after their step with a checkpoint; no further job starts"
            )
            for worker in multiprocessing.active_children():  # the launcher's worker processes
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.release()
        if self.sweep_dir is not None:
            stopping_file(self.sweep_dir).unlink(missing_ok=True)

        if self.received is not None:
            from gan_lightning.sweeps import report

            report.stop_signal = self.received


def launch_until_stopped(launch: Any, config: DictConfig, jobs: int) -> list:
    """Run ``launch`` (the joblib launcher's); a stop signal that ends worker processes while they start (before their
    jobs can take the signal as a stop) ends the pool with an error, which here means the sweep was stopped: the jobs
    that had not begun are not run (none has written anything), and the same command resumes the sweep."""
    from concurrent.futures.process import BrokenProcessPool

    from hydra.core.utils import JobReturn, JobStatus

    try:
        return launch()
    except BrokenProcessPool:
        if not stopping_file(config.hydra.sweep.dir).exists():
            raise
        log.warning("the sweep was stopped while its worker processes started: run the same command to resume")
        return [JobReturn(status=JobStatus.COMPLETED, _return_value=None) for _ in range(jobs)]

"""``hydra/launcher=parallel``: the jobs of a multirun side by side on this machine.

The jobs run ``hydra.launcher.n_jobs`` at a time in worker processes of hydra-joblib-launcher (joblib's loky
backend); each leaves what a job of the basic launcher leaves. What a job does differently is here:

- threads: with ``trainer.num_threads=null`` a job takes its share of the cores (cores // n_jobs), not
  PyTorch's default of every core, which n_jobs processes would oversubscribe;
- GPUs: a job with ``trainer.devices=1`` on a machine with several GPUs takes GPU ``job number % GPUs``
  (round-robin); with more jobs than GPUs, jobs share them;
- stopping: a stop signal (Ctrl-C reaches every process of the sweep) lets each running job checkpoint its
  step and record ``interrupted``, as a job of the basic launcher does, and no further job starts. The
  sweep's process only marks the sweep as stopping (the STOPPING file in the sweep directory) and waits
  for its jobs; a second Ctrl-C abandons them.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("gan_lightning")

LAUNCHER_TARGET = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
STOPPING = "STOPPING"  # in the sweep directory while a stop signal ends the sweep
PARENT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs(num_threads: Optional[int]) -> int:
    """Jobs at a time when hydra.launcher.n_jobs is not given: as many as the cores hold at trainer.num_threads each."""
    return max(1, available_cores() // (num_threads or 1))


OmegaConf.register_new_resolver("gan_lightning.parallel_jobs", default_jobs, replace=True)


def current_hydra_config() -> Optional[DictConfig]:
    """Hydra's config of the job running in this process; None outside a Hydra job (the benchmark, tests)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


VECTORIZED_TARGET = "hydra_plugins.gan_lightning_vectorized.VectorizedLauncher"


def joblib_settings(hydra_config: Any) -> Optional[DictConfig]:
    """The settings of the parallel launcher this job runs under: hydra/launcher=parallel, or the groups of
    hydra/launcher=vectorized with hydra.launcher.groups=parallel; None for any other launcher."""
    launcher = None if hydra_config is None else OmegaConf.select(hydra_config, "launcher", default=None)
    if launcher is None:
        return None
    target = launcher.get("_target_")
    if target == LAUNCHER_TARGET:
        return launcher
    return launcher.parallel if target == VECTORIZED_TARGET and launcher.get("groups") == "parallel" else None


def is_parallel(hydra_config: Any) -> bool:
    """Whether this job (its Hydra config) was started by the parallel launcher."""
    return joblib_settings(hydra_config) is not None


class SweepStopped(Exception):
    """A job of a parallel multirun that a stop signal ended before the job began to train."""

    def __init__(self) -> None:
        super().__init__("the sweep was stopped before this job began to train: run the same command to resume")


def job_threads(hydra_config: Any, num_threads: Optional[int]) -> Optional[int]:
    """PyTorch threads for this job: trainer.num_threads, or its share of the cores in a parallel multirun."""
    if num_threads is not None or not is_parallel(hydra_config):
        return num_threads
    return max(1, available_cores() // max(int(joblib_settings(hydra_config).n_jobs), 1))


def job_devices(hydra_config: Any, accelerator: str, devices: Any) -> Any:
    """trainer.devices for this job: one GPU of several, round-robin by job number, in a parallel multirun."""
    import torch

    if not is_parallel(hydra_config) or str(devices) != "1" or accelerator not in ("auto", "gpu", "cuda"):
        return devices
    gpus = torch.cuda.device_count()
    return [int(hydra_config.job.num) % gpus] if gpus > 1 else devices


def stopping_file(sweep_dir: Any) -> Path:
    return Path(str(sweep_dir)) / STOPPING


def sweep_stopping(hydra_config: Any) -> bool:
    """Whether the parallel multirun this job belongs to is being stopped: the job must not start training."""
    return is_parallel(hydra_config) and stopping_file(hydra_config.sweep.dir).exists()


class ParallelStop(Callback):
    """In the sweep's process of a parallel multirun: the first stop signal marks the sweep as stopping and waits
    for the running jobs, which received it too (or see the mark before they train)."""

    def __init__(self) -> None:
        self.previous: dict = {}
        self.received: Optional[int] = None
        self.sweep_dir: Optional[Path] = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from gan_lightning import sweep

        sweep.stop_signal = None
        if not is_parallel(config.hydra):
            return
        self.sweep_dir = Path(config.hydra.sweep.dir)
        stopping_file(self.sweep_dir).unlink(missing_ok=True)  # left by an earlier, stopped run of this sweep
        self.received = None
        for signum in PARENT_SIGNALS:
            self.previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self.handle)

    def handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: abandon the jobs
        if self.received is None:
            self.received = signum
            self.sweep_dir.mkdir(parents=True, exist_ok=True)
            stopping_file(self.sweep_dir).write_text(f"{signal.Signals(signum).name}\n")
            log.warning(f"received {signal.Signals(signum).name}: the running jobs stop after their step with a checkpoint; no further job starts")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}
        if self.sweep_dir is not None:
            stopping_file(self.sweep_dir).unlink(missing_ok=True)

        if self.received is not None:
            from gan_lightning import sweep

            sweep.stop_signal = self.received

"""What a run asks of the job it runs in: its threads and devices, and whether its sweep is being stopped. Jobs of
``hydra/launcher=parallel`` (gan_lightning/sweeps/parallel.py) share the machine's cores and GPUs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

LAUNCHER_TARGET = "hydra_plugins.gan_lightning_parallel.ParallelLauncher"  # hydra-joblib-launcher's, stopped cleanly
SLURM_LAUNCHER = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
STOPPING = "STOPPING"  # in the sweep directory while a stop signal ends the sweep
VECTORIZED_TARGET = "hydra_plugins.gan_lightning_vectorized.VectorizedLauncher"


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def current_hydra_config() -> Optional[DictConfig]:
    """Hydra's config of the job running in this process; None outside a Hydra job (the benchmark, tests)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def launcher_settings(hydra_config: Any, target: str, groups: str) -> Optional[DictConfig]:
    """The settings of the launcher ``target`` this job or sweep runs under, itself or as hydra/launcher=vectorized's
    ``groups`` launcher; None for any other launcher."""
    launcher = None if hydra_config is None else OmegaConf.select(hydra_config, "launcher", default=None)
    if launcher is None:
        return None
    if launcher.get("_target_") == target:
        return launcher
    vectorized = launcher.get("_target_") == VECTORIZED_TARGET and launcher.get("groups") == groups
    return launcher[groups] if vectorized else None


def joblib_settings(hydra_config: Any) -> Optional[DictConfig]:
    """hydra/launcher=parallel's settings (or the vectorized launcher's with hydra.launcher.groups=parallel)."""
    return launcher_settings(hydra_config, LAUNCHER_TARGET, "parallel")


def slurm_settings(hydra_config: Any) -> Optional[DictConfig]:
    """hydra/launcher=slurm's settings (or the vectorized launcher's with hydra.launcher.groups=slurm)."""
    return launcher_settings(hydra_config, SLURM_LAUNCHER, "slurm")


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

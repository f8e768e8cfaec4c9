"""``hydra/launcher=slurm`` (submitit): the resolvers conf/hydra/launcher/slurm.yaml sizes a job's tasks and GPUs with,
resolved in the process that submits the jobs."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def device_count(devices: Any) -> int:
    """``trainer.devices`` as a number of processes per node (for SLURM's tasks per node)."""
    if not isinstance(devices, (str, int)):
        return len(devices)  # a list of device ids
    try:
        count = int(devices)
    except ValueError:  # "auto": Lightning counts the devices, but SLURM must be told before
        count = -1
    if count < 1:
        raise ValueError(
            f"trainer.devices={devices!r}: under hydra/launcher=slurm give the number of devices per node, e.g. trainer.devices=4"
        )
    return count


def slurm_gpus(accelerator: str, devices: Any, default: Any) -> int:
    """GPUs to ask SLURM for per node: one per process when training on GPUs, else the site default."""
    return device_count(devices) if accelerator in ("gpu", "cuda") else int(default)


OmegaConf.register_new_resolver("gan_lightning.device_count", device_count, replace=True)
OmegaConf.register_new_resolver("gan_lightning.slurm_gpus", slurm_gpus, replace=True)

"""Data-parallel training: one process per device, gradients averaged by DistributedDataParallel.

This module tells a process its rank and its random stream, gathers tensors across ranks, names the
command that runs a job's other processes and the SLURM job a run belongs to. The Lightning strategy and
launcher that use them (``trainer.strategy=gan_ddp``) are in gan_lightning/adapter/ddp.py.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Dict, List

import numpy as np
from omegaconf import OmegaConf

from gan_lightning.lazy import torch

log = logging.getLogger("gan_lightning")

# What the launcher sets in the parent process for the job's processes; restored when the job ends.
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def process_rank() -> int:
    """This process's global rank: 0 outside data-parallel runs. Before the strategy sets it, Lightning
    reads it from the launcher's environment (LOCAL_RANK, RANK, SLURM_PROCID)."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of one rank's random stream: distinct across ranks, and from every (seed', rank') of other runs
    (``seed + rank`` would give rank 1 of seed 0 the stream of rank 0 of seed 1)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def gather(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` of every rank, stacked in rank order, on the CPU (sent from ``device``, which NCCL needs)."""
    local = tensor.to(device)
    parts = [torch.empty_like(local) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, local)
    return torch.stack(parts).cpu()


def slurm_job() -> Dict[str, Any]:
    """The SLURM job this process runs in (``12_3`` for task 3 of array job 12) and how often it was requeued."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array_job}_{task}" if array_job and task else os.environ["SLURM_JOB_ID"]
    return {"slurm_job_id": job_id, "slurm_restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0"))}


def device_count(devices: Any) -> int:
    """``trainer.devices`` as a number of processes per node (for SLURM's tasks per node)."""
    if not isinstance(devices, (str, int)):
        return len(devices)  # a list of device ids
    try:
        count = int(devices)
    except ValueError:  # "auto": Lightning counts the devices, but SLURM must be told before
        count = -1
    if count < 1:
        raise ValueError(f"trainer.devices={devices!r}: under hydra/launcher=slurm give the number of devices per node, e.g. trainer.devices=4")
    return count


def slurm_gpus(accelerator: str, devices: Any, default: Any) -> int:
    """GPUs to ask SLURM for per node: one per process when training on GPUs, else the site default."""
    return device_count(devices) if accelerator in ("gpu", "cuda") else int(default)


def job_command(local_rank: int) -> List[str]:
    """The command that runs this Hydra job (not the whole multirun) as one more process in its run directory."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    run_dir = str(hc.runtime.output_dir).replace("\\", "\\\\").replace("'", "\\'")
    return [
        sys.executable,
        "-m",
        "gan_lightning.run",
        *hc.overrides.task,
        f"hydra.run.dir='{run_dir}'",
        "hydra.output_subdir=null",  # the job's .hydra/ is rank 0's
        f"hydra.job.name={hc.job.name}_rank{local_rank}",  # its log: <run dir>/run_rank<N>.log
    ]


# For conf/hydra/launcher/slurm.yaml, resolved in the process that submits the jobs.
OmegaConf.register_new_resolver("gan_lightning.device_count", device_count, replace=True)
OmegaConf.register_new_resolver("gan_lightning.slurm_gpus", slurm_gpus, replace=True)


class Shares:
    """How the processes of a job split a piece of work made of numbered parts (an evaluation's generated batches):
    process ``rank`` of ``processes`` takes parts rank, rank + processes, ...; the first process gets every part back,
    in order, so that what it computes from them equals what one process computes alone."""

    def __init__(self, rank: int = 0, processes: int = 1):
        self.rank, self.processes = rank, processes

    @classmethod
    def of_job(cls) -> "Shares":
        """The current process group's split (one process outside data-parallel jobs)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return cls(torch.distributed.get_rank(), torch.distributed.get_world_size())
        return cls()

    def mine(self, parts: int) -> range:
        return range(self.rank, parts, self.processes)

    def collect(self, done: Dict[int, Any]) -> Any:
        """Every process's ``done`` (part number → result) merged, as a list in part order, on the first process;
        None on the others."""
        if self.processes == 1:
            return [done[part] for part in sorted(done)]
        received = [None] * self.processes if self.rank == 0 else None
        torch.distributed.gather_object(done, received, dst=0)
        if self.rank != 0:
            return None
        merged = {part: result for share in received for part, result in share.items()}
        return [merged[part] for part in sorted(merged)]

"""Data-parallel training: one process per device, gradients averaged by DistributedDataParallel.

A process's rank and its own random stream, tensors gathered across ranks, and how the processes of a job share a
piece of work. The Lightning strategy and launcher that train this way (``trainer.strategy=gan_ddp``) are in
gan_lightning/adapter/ddp.py.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from gan_lightning.lazy import torch


def process_rank() -> int:
    """This process's global rank: 0 outside data-parallel runs. Before the strategy sets it, Lightning
    reads it from the launcher's environment (LOCAL_RANK, RANK, SLURM_PROCID)."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


class Agreement:
    """How the training processes decide alike: the smallest of a number over all of them, whether any raises a flag.
    Without a strategy (one process) each decides alone."""

    def __init__(self, strategy: Any = None):
        self.strategy = strategy

    def smallest(self, value: int, device) -> int:
        if self.strategy is None:
            return value
        return int(self.strategy.reduce(torch.tensor(value, device=device), reduce_op="min"))

    def any(self, flag: bool) -> bool:
        if self.strategy is None:
            return flag
        return bool(self.strategy.reduce_boolean_decision(flag, all=False))


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


class Shares:
    """How the processes of a job split a piece of work made of numbered parts (an evaluation's generated batches):
    process ``rank`` of ``processes`` takes parts rank, rank + processes, ...; the first process gets every part back,
    in order, so that what it computes from them equals what one process computes alone."""

    def __init__(self, rank: int = 0, processes: int = 1):
        self.rank, self.processes = rank, processes

    @classmethod
    def of_job(cls) -> Shares:
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

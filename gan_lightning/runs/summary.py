"""A run's ``summary.json``: what the run ended as, written atomically as it ends (the readers of finished runs:
``gan_lightning.results``)."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
from pathlib import Path
from typing import Any, Dict, Mapping

from gan_lightning.files import atomic_write

log = logging.getLogger("gan_lightning")
FILENAME = "summary.json"
STATUSES = ("completed", "pruned", "failed", "diverged", "interrupted")
# Statuses of a run that ended as it should: trained to its end, or stopped by its search's pruner.
ENDED_WELL = ("completed", "pruned")


def scalar_metrics(metrics: Mapping[str, Any]) -> Dict[str, float]:
    """Logged values as plain floats (non-finite ones as strings, which JSON can hold). A float32 value is written
    as the shortest decimal that is the same float32: 0.0002, not 0.00019999999494757503."""
    out = {}
    for key, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            out[key] = str(number)
        elif str(getattr(value, "dtype", "")) in ("torch.float32", "float32"):
            import numpy

            out[key] = float(str(numpy.float32(number)))
        else:
            out[key] = number
    return out


def processor_name() -> str:
    """The CPU's model name where the system tells it (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> Dict[str, Any]:
    """What a run or benchmark was measured on, so that its times can be read beside other machines'.

    ``cpus`` counts the cores this process may use (a container's or a SLURM job's share, not the host's);
    ``threads`` is PyTorch's intra-op thread count as the run set it (``trainer.num_threads``).
    """
    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"processor": processor_name(), "cpus": cpus, "threads": torch.get_num_threads(), "device": device,
            "python": platform.python_version(), "torch": torch.__version__}  # fmt: skip


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    return atomic_write(Path(run_dir) / FILENAME, json.dumps(summary, indent=2, sort_keys=False) + "\n")


def read_summary(run_dir: Path) -> Dict[str, Any]:
    return json.loads((Path(run_dir) / FILENAME).read_text())


def slurm_job() -> Dict[str, Any]:
    """The SLURM job this process runs in (``12_3`` for task 3 of array job 12) and how often it was requeued."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array_job}_{task}" if array_job and task else os.environ["SLURM_JOB_ID"]
    return {"slurm_job_id": job_id, "slurm_restarts": int(os.environ.get("SLURM_RESTART_COUNT", "0"))}

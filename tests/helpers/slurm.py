"""Drive the single-node SLURM cluster of ``scripts/slurm/local-cluster.sh`` from pytest.

Meant for a session-scoped fixture, e.g.::

    @pytest.fixture(scope="session")
    def slurm_cluster():
        with local_cluster() as info:
            yield info

Starting needs root (it may ``apt-get install`` slurm-wlm and munge, writes
``/etc/slurm/slurm.conf``); :func:`cluster_available` says whether that can work here so
tests can skip instead of fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "slurm" / "local-cluster.sh"
PARTITION = "debug"


def _run_script(command: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def state_dir() -> Path:
    """Folder holding the cluster's generated state (config, logs, spool, pid files)."""
    return Path(os.environ.get("SLURM_LOCAL_DIR", "/tmp/gan_lightning_slurm"))


def cluster_available() -> bool:
    """True if :func:`start_cluster` can work: SLURM installed, or installable (root + apt-get)."""
    if shutil.which("sbatch") and shutil.which("slurmctld") and shutil.which("munged"):
        return True
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def cluster_running() -> bool:
    """True if the script's ``status`` reports all daemons up and the node usable."""
    try:
        return _run_script("status", timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_cluster(timeout: float = 600) -> str:
    """Start the cluster (idempotent) and return the script's output.

    ``timeout`` covers a first-time package install; the script itself waits at most
    ``SLURM_START_TIMEOUT`` (60 s) for the node to become idle. Raises ``RuntimeError``
    with the script's output (and where its logs are) if it fails.
    """
    proc = _run_script("start", timeout=timeout)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT} start failed (exit {proc.returncode}); logs under {state_dir()}:\n{output}")
    return output


def stop_cluster(timeout: float = 120) -> None:
    """Stop the daemons (cancelling leftover jobs first); fine if they are not running."""
    proc = _run_script("stop", timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT} stop failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


def queued_jobs() -> List[str]:
    """IDs of jobs still known to ``squeue`` (pending, running or completing)."""
    proc = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return proc.stdout.split()


def wait_for_jobs(timeout: float = 300, poll: float = 1.0) -> None:
    """Poll ``squeue -h`` until it lists no job; ``TimeoutError`` naming the jobs left otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(["squeue", "-h"], capture_output=True, text=True)
        if proc.returncode == 0 and not proc.stdout.strip():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"SLURM jobs still queued after {timeout:.0f}s:\n{proc.stdout}{proc.stderr}")
        time.sleep(poll)


@contextmanager
def local_cluster(stop: Optional[bool] = None) -> Iterator[Dict[str, object]]:
    """Context manager for a session fixture: start the cluster, yield its details, then stop it.

    By default it stops the cluster only if it started it (a cluster already running
    before, e.g. started by hand, is left running); pass ``stop=True``/``False`` to force.
    Yields ``{"partition": "debug", "state_dir": Path, "script": Path}``.
    """
    was_running = cluster_running()
    start_cluster()
    try:
        yield {"partition": PARTITION, "state_dir": state_dir(), "script": SCRIPT}
    finally:
        if stop if stop is not None else not was_running:
            stop_cluster()

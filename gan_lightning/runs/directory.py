"""The run directory as one run's property: a lock while a run uses it, the run's identity, and nothing written
before the run is known to be valid.

A run takes the directory's lock before it reads anything there, checks everything it can (settings, data,
the checkpoint it would resume from), and only then *claims* the directory: it writes ``.hydra/``, starts
``run.log`` and records its identity. A refused start or resume therefore leaves every file of an existing
run exactly as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

from omegaconf import DictConfig, OmegaConf

from gan_lightning.checkpoints.folder import checkpoint_folder
from gan_lightning.errors import UserError
from gan_lightning.files import atomic_write

log = logging.getLogger("gan_lightning")

LOCK_FILE = ".lock"
IDENTITY_FILE = "run.json"  # {"run_id": ...}: the run's one W&B run id, kept for every resume
# The format of Hydra's own job log file handler, which run.log keeps.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


# When the command began (python -m gan_lightning.run sets it): a folder made since then, by Hydra for this job, and
# left empty by a refused run is removed; one that was there before is left as it was, even empty.
command_started: Optional[float] = None


def new_run_id() -> str:
    """An id in W&B's alphabet and length (8 lower-case letters and digits)."""
    return uuid.uuid4().hex[:8]


class RunDirectory:
    """One run's hold on its directory: ``acquire`` (the lock), ``claim`` (the first writes), ``release``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: Optional[int] = None
        self.claimed = False
        self.acquired = False  # the lock was taken: the directory exists because of this run, or held a run before
        self.log_handler: Optional[logging.Handler] = None
        # A directory that already holds a run (or is being used by one) keeps its files when this start is refused.
        self.holds_previous_run = any(
            path.exists()
            for path in (self.path / "summary.json", checkpoint_folder(self.path), self.path / IDENTITY_FILE)
        )

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def acquire(self) -> None:
        """Take the directory's lock, or raise UserError naming the run that holds it.

        The lock is an flock on ``.lock``: the kernel drops it when its holder exits, however it exits, so a lock
        whose file still names a holder but that can be taken was left by a killed run, and is taken over.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe(read_holder(fd))
            os.close(fd)
            self.holds_previous_run = True
            raise UserError(
                f"{self.path} is in use by another run ({holder}): two runs in one directory would mix their logs and "
                "checkpoints. Wait for it to end, or choose another hydra.run.dir."
            ) from None
        self.acquired = True
        previous = read_holder(fd)
        if previous:
            log.warning(
                f"taking over the lock of {self.path} left by a run that is no longer running ({describe(previous)})"
            )
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self.fd = fd

    def claim(self, cfg: DictConfig, hydra_config: Any, log_name: str, write_config: bool = True) -> None:
        """The run is valid: append its log to ``log_name`` and (``write_config``: the process holding the lock)
        record its configuration in ``.hydra/`` as Hydra would, and remove temporary files that killed writers
        left (the lock guarantees that no live writer owns them)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if write_config:
            hydra_dir = self.path / ".hydra"
            atomic_write(hydra_dir / "config.yaml", OmegaConf.to_yaml(cfg))
            atomic_write(hydra_dir / "hydra.yaml", OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_config})))
            atomic_write(
                hydra_dir / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(hydra_config.overrides.task)))
            )
            for stale in self.path.glob("checkpoints/.*.tmp"):
                stale.unlink(missing_ok=True)
        handler = RunLogHandler(self.path / log_name, mode="a")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        self.log_handler = handler
        self.claimed = True

    def run_id(self, from_checkpoint: Optional[str]) -> str:
        """The run's id, the same at every resume: from ``run.json``, else the checkpoint it resumes from, else new."""
        path = self.path / IDENTITY_FILE
        try:
            return str(json.loads(path.read_text())["run_id"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        run_id = from_checkpoint or new_run_id()
        atomic_write(path, json.dumps({"run_id": run_id}) + "\n")
        return run_id

    def release(self) -> None:
        """Let the directory go; one the run never took (its settings were refused) is removed if it is empty and was
        made for this command (by Hydra, for the job): a refused run leaves no folder behind."""
        if not self.acquired and command_started is not None:
            with contextlib.suppress(OSError):
                made_for_it = self.path.stat().st_ctime >= command_started
                if made_for_it and self.path.is_dir() and not any(self.path.iterdir()):
                    self.path.rmdir()
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
            with contextlib.suppress(OSError):  # a full disk: what the log could not take is on stderr
                self.log_handler.close()
            self.log_handler = None
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # an empty lock file: released, not left behind
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class RunLogHandler(logging.FileHandler):
    """run.log: a record the file cannot take (a full disk) is dropped, without the traceback that Python's logging
    prints for it; the console still shows every record."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def read_holder(fd: int) -> Dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except ValueError:
        return {}


def describe(holder: Dict[str, Any]) -> str:
    if not holder:
        return "a run that has not yet written its name"
    return f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


def job_log_name(hydra_config: Any) -> str:
    """The job's log file, named as Hydra names it: ``<job name>.log`` (``run.log``; ``run_rank1.log`` for rank 1)."""
    return f"{OmegaConf.select(hydra_config, 'job.name') or 'run'}.log"


__all__ = ["RunDirectory", "job_log_name", "new_run_id", "IDENTITY_FILE", "LOCK_FILE"]


def continues_own_run(checkpoint: Path, run_dir: Path) -> bool:
    """Whether ``checkpoint`` is one of this run directory's; one of another run's (resume=PATH) starts a new run."""
    return Path(checkpoint).resolve().parent.parent == Path(run_dir).resolve()

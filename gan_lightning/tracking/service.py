"""W&B's service process (``wandb-core``), ended within a time limit: W&B waits for it without one, at exit too.
Without Lightning, so that light commands (compare) close their W&B runs the way training runs do."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, List

log = logging.getLogger("gan_lightning")

# How long the W&B server may take to answer at all before the run logs offline. W&B's own start would also
# begin usage reporting to that server, which then holds up the end of the process for a minute.
WANDB_SERVER_TIMEOUT_S = 5

# How long a run waits for W&B to close a run when its configuration does not say (logger.finish_timeout_s).
FINISH_TIMEOUT_S = 60.0


def within(seconds: float, call: Callable[[], Any]) -> bool:
    """Run ``call`` in a thread of its own and wait for it at most ``seconds``: True when it returned (its error, if
    any, raised here), False when it is still running. Signals reach this thread's handlers meanwhile."""
    done = threading.Event()
    errors: List[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as error:  # handed to the waiting thread
            errors.append(error)
        finally:
            done.set()

    threading.Thread(target=target, name="gan_lightning W&B", daemon=True).start()
    if not done.wait(seconds):
        return False
    if errors:
        raise errors[0]
    return True


def wandb_service_processes() -> List[int]:
    """The W&B service processes this process started (``wandb-core``), by their process ids (Linux's /proc)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip().startswith("wandb-core"):
                    found.append(int(pid))
            except OSError:
                continue
    return found


def stop_wandb_service(timeout_s: float = WANDB_SERVER_TIMEOUT_S) -> None:
    """End W&B's service process, waiting at most ``timeout_s`` for it to shut down; one that does not answer is
    killed, so that neither this process nor its exit waits for it (W&B waits for it at exit, without limit)."""
    import wandb

    try:
        if within(timeout_s, lambda: wandb.teardown(exit_code=1)):
            return
    except Exception as error:  # nothing of the service is needed any more
        log.debug(f"W&B teardown: {error}")
        return
    for pid in wandb_service_processes():
        os.kill(pid, signal.SIGKILL)
    log.warning(f"W&B's service did not shut down within {timeout_s:.0f} s; it was stopped")


def finish_run(run: Any, timeout_s: float = FINISH_TIMEOUT_S) -> bool:
    """Finish W&B run ``run`` and wait until its transaction log is on disk, at most ``timeout_s`` in all: True when
    it is. W&B's service may close the log after ``finish()`` returns, so closed means written. A run W&B does not
    close in time is left as it is on disk (for ``wandb sync``) and W&B's service stopped: the caller ends anyway."""
    from gan_lightning.tracking.wandb_records import wait_until_written

    folder = Path(run.dir).parent
    started = time.monotonic()
    if within(timeout_s, run.finish) and wait_until_written(folder, max(0.0, timeout_s - (time.monotonic() - started))):
        return True
    log.warning(f"W&B did not close run {run.id} within {timeout_s:g} s (logger.finish_timeout_s); it ends without "
                f"waiting: what W&B wrote is in {folder} (upload it with wandb sync)")  # fmt: skip
    stop_wandb_service()
    return False

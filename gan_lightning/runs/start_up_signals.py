"""Stop signals from the first moment of a command: a signal during start-up (imports, the checks of the command
line, data, W&B) ends it with exit code 128 + its number (a run with status ``interrupted``), never with the
signal's default action.

``python -m gan_lightning.run`` calls ``hold()`` first, and each run again when it begins; the training callback
(``gan_lightning.runs.interrupt.StopOnSignal``) takes over with ``take_over()``: the signal received so far
and the handlers that were in place before (submitit's requeue on SIGUSR2, for example). This module imports
nothing heavy, so that it is in place before torch and Lightning are imported. Every signal handler the project
installs is installed here: the recorders (start-up, training's, a parallel sweep's process) and ``ignore``.
"""

from __future__ import annotations

import logging
import signal
from typing import Any, Dict, Optional, Tuple

from gan_lightning.errors import Interrupted

log = logging.getLogger("gan_lightning")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class SignalRecorder:
    """Records the first stop signal for the code to act on where it can stop cleanly; a second Ctrl-C stops at
    once. ``release`` puts back the handlers it replaced."""

    stopping = "stopping"  # what the log line says happens next

    def __init__(self) -> None:
        self.received: Optional[int] = None
        self.previous: Dict[int, Any] = {}

    def install(self, previous: Optional[Dict[int, Any]] = None, signums: Tuple[int, ...] = STOP_SIGNALS) -> None:
        """Handle ``signums`` (the stop signals) from now on; ``previous``: the handlers to put back, where they are
        not the current ones (those a start-up recorder replaced)."""
        for signum in signums:
            self.previous[signum] = (previous or {}).get(signum, signal.getsignal(signum))
            signal.signal(signum, self.handle)

    def reclaim(self, signum: int) -> None:
        """Handle ``signum`` again where a library put its own handler in place since ``install``."""
        signal.signal(signum, self.handle)

    def handle(self, signum: int, frame: Any) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum
            log.warning(f"received {signal.Signals(signum).name}: {self.stopping}")

    def release(self) -> None:
        """The handlers from before back in place."""
        previous, self.previous = self.previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class StartUpSignals(SignalRecorder):
    """Records the first stop signal until training's own handler takes over."""

    stopping = "stopping before training starts"

    def check(self, step: int) -> None:
        """Raise Interrupted (no checkpoint: no step was trained) where a stop signal came."""
        if self.received is not None:
            raise Interrupted(self.received, step, saved=False)


_held: Optional[StartUpSignals] = None


def hold() -> StartUpSignals:
    """Stop signals are recorded from now on, until ``take_over()`` or ``release()``; one already received by the
    holder before it is kept."""
    global _held
    received = _held.received if _held is not None else None
    release()
    _held = StartUpSignals()
    _held.received = received
    _held.install()
    return _held


def take_over() -> Tuple[Optional[int], Dict[int, Any]]:
    """For training's handler, which installs its own at once and puts the others back at its end: the signal
    received during start-up and the handlers from before the run (the current ones where no run holds the
    signals: a module trained outside ``gan_lightning.run``)."""
    global _held
    if _held is None:
        return None, {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    held, _held = _held, None
    return held.received, held.previous


def release() -> None:
    """The handlers from before the run back in place (at its end)."""
    global _held
    if _held is not None:
        _held.release()
        _held = None


def ignore(*signums: int) -> None:
    """``signums`` ignored from now on: a parallel worker between its jobs (the sweep's process decides what a stop
    means), a command that only closes its files."""
    for signum in signums:
        signal.signal(signum, signal.SIG_IGN)

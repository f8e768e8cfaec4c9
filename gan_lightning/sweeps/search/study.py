"""What the sweep and its trials keep in the study besides Optuna's own records: heartbeats, the run directory of
each trial, and re-queued trials. Everything goes through the storage, never through a process's memory, so any
process (a later sweep, a second sweep on the same storage, a trial on another node) sees the same study."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional

log = logging.getLogger("gan_lightning")

HEARTBEAT = "gan_lightning:heartbeat"  # system attribute: the time of the trial's latest sign of life
RUN_DIR = "run_dir"  # user attribute: the trial's run directory
RETRY_OF = "retry_of"  # user attribute: the number of the stopped trial this one runs again
STOPPED = "stopped"  # user attribute of a trial that did not end by itself: interrupted, lost or surplus


def beat(storage: Any, trial_id: int) -> None:
    """Record that a running trial is alive; a trial that ended meanwhile is left as it is."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
    except (UpdateFinishedTrialError, RuntimeError):
        pass


def last_sign_of_life(trial: Any) -> float:
    started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(float(trial.system_attrs.get(HEARTBEAT) or 0.0), started)


def chain_length(trials: List[Any], trial: Any) -> int:
    """How many times the trial's parameters have run before it (0 for a first run)."""
    by_number = {t.number: t for t in trials}
    count, current = 0, trial
    while current.user_attrs.get(RETRY_OF) is not None and current.user_attrs[RETRY_OF] in by_number:
        count, current = count + 1, by_number[current.user_attrs[RETRY_OF]]
    return count


def stop_trial(study: Any, trial: Any, reason: str, retries: int) -> Optional[int]:
    """End a trial that did not end by itself as failed, and queue its parameters again (at most ``retries`` runs
    again of the same parameters); return its number when it was queued again, else None."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, STOPPED, reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            return None
    except UpdateFinishedTrialError:  # another process ended it first
        return None
    trials = study.get_trials(deepcopy=False)
    if chain_length(trials, trial) >= retries:
        log.warning(f"trial {trial.number} ({reason}) is not run again: its parameters ran {retries + 1} times")
        return None
    study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number})
    return trial.number


@dataclass
class Progress:
    """The study's trials as a sweep counts them against n_trials: a stopped trial whose parameters were queued again
    counts once, as its new run; a surplus trial (two sweeps asked at once) not at all."""

    finished: List[Any]
    running: List[Any]
    waiting: List[Any]
    counted: List[Any]

    @property
    def started(self) -> int:
        return len(self.finished) + len(self.running)


def progress(trials: Iterable[Any]) -> Progress:
    from optuna.trial import TrialState

    trials = list(trials)
    replaced = {t.user_attrs.get(RETRY_OF) for t in trials} - {None}
    counted = [t for t in trials if t.number not in replaced and t.user_attrs.get(STOPPED) != "surplus"]
    return Progress(
        finished=[t for t in counted if t.state.is_finished()],
        running=[t for t in counted if t.state == TrialState.RUNNING],
        waiting=[t for t in counted if t.state == TrialState.WAITING],
        counted=counted,
    )


def fail_lost_trials(study: Any, stale_after_s: float, retries: int, own: Iterable[int] = ()) -> List[int]:
    """Trials left running by a sweep or job that no longer exists (no heartbeat for ``stale_after_s``): failed and
    queued again. ``own``: trial numbers this process runs, never lost."""
    from optuna.trial import TrialState

    now, own, lost = time.time(), set(own), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number not in own and now - last_sign_of_life(trial) > stale_after_s:
            stop_trial(study, trial, "lost", retries)
            lost.append(trial.number)
    if lost:
        log.warning(
            f"trial(s) {', '.join(map(str, lost))} had no heartbeat for {stale_after_s:.0f} s (their sweep or job was "
            "killed): marked failed, their parameters queued to run again"
        )
    return lost

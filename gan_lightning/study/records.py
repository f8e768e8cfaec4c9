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


@dataclass
class StoredStudy:
    """An Optuna study and the storage it lives in, where the records of its trials are written by trial number."""

    study: Any
    storage: Any

    @property
    def name(self) -> str:
        return self.study.study_name

    def trials(self) -> List[Any]:
        return self.study.get_trials(deepcopy=False)

    def progress(self) -> Progress:
        return progress(self.trials())

    def trial_id(self, number: int) -> int:
        study_id = self.storage.get_study_id_from_name(self.name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def trial(self, number: int) -> Any:
        return self.storage.get_trial(self.trial_id(number))

    def set_user_attr(self, number: int, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(self.trial_id(number), key, value)

    def beat(self, number: int) -> None:
        """Record that a running trial is alive; a trial that ended meanwhile is left as it is."""
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            self.storage.set_trial_system_attr(self.trial_id(number), HEARTBEAT, time.time())
        except (UpdateFinishedTrialError, RuntimeError):
            pass

    def stop(self, number: int, reason: str, retries: int) -> Optional[int]:
        """End a running trial that did not end by itself as failed, and queue its parameters again (at most
        ``retries`` runs again of the same parameters); its number when it was queued again, else None."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        trial_id = self.trial_id(number)
        try:
            self.storage.set_trial_user_attr(trial_id, STOPPED, reason)
            if not self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                return None
        except UpdateFinishedTrialError:  # another process ended it first
            return None
        trials = self.trials()
        trial = next(t for t in trials if t.number == number)
        if chain_length(trials, trial) >= retries:
            log.warning(f"trial {number} ({reason}) is not run again: its parameters ran {retries + 1} time(s)")
            return None
        self.study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: number})
        return number

    def fail_lost(self, stale_after_s: float, retries: int, own: Iterable[int] = ()) -> List[int]:
        """Trials left running by a sweep or job that no longer exists (no heartbeat for ``stale_after_s``): failed
        and queued again. ``own``: trial numbers this process runs, never lost."""
        from optuna.trial import TrialState

        now, own, lost = time.time(), set(own), []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.number not in own and now - last_sign_of_life(trial) > stale_after_s:
                self.stop(trial.number, "lost", retries)
                lost.append(trial.number)
        if lost:
            log.warning(
                f"trial(s) {', '.join(map(str, lost))} had no heartbeat for {stale_after_s:.0f} s (their sweep or job "
                "was killed): marked failed, their parameters queued to run again"
            )
        return lost

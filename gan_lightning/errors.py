"""How runs end other than by completing: errors the user can fix (one clear message, never a traceback), divergence
and stop signals."""

import signal
from typing import Iterable

# Exit statuses. A user error (bad setting, missing data, unusable checkpoint, full disk) prints its message and
# no traceback; a bug of ours exits 1 with its traceback; a stop signal exits 128 + its number (143 for SIGTERM).
USER_ERROR_EXIT = 2
DIVERGED_EXIT = 3


class UserError(Exception):
    """A setting, a path or an input the user gave is not usable; the message says which and what is allowed."""


def invalid(setting: str, value: object, allowed: str) -> UserError:
    """The standard message for a bad setting: its name, its value and what would be accepted."""
    return UserError(f"{setting}={value!r} is not allowed: {allowed}.")


def require_choice(setting: str, value: object, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise invalid(setting, value, f"one of {', '.join(choices)}")


def require_positive(setting: str, value: float, allowed: str = "a positive number") -> None:
    if not value > 0:
        raise invalid(setting, value, allowed)


class Diverged(Exception):
    """Training produced a non-finite loss or weight."""

    def __init__(self, step: int, what: str, value: float):
        super().__init__(f"training diverged at step {step}: {what} = {value}")
        self.step, self.what, self.value = step, what, value


class Interrupted(Exception):
    """A stop signal ended training (after its current step, with a checkpoint when one could be saved)."""

    def __init__(self, signum: int, step: int, saved: bool):
        name = signal.Signals(signum).name
        kept = f"checkpoint at step {step} saved" if saved else "no checkpoint could be saved"
        super().__init__(f"interrupted by {name} after step {step}; {kept}: run the same command to resume")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

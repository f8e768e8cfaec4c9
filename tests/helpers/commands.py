"""The project's commands as a user types them, run in this process: the exit code and what they printed.

A command's process is not the subject of most tests (its arguments, its refusals, its files are), and each new
Python process pays seconds of imports. ``command`` calls the command's ``main(argv)`` exactly as ``python -m`` would
(``gan_lightning.run`` through Hydra's command line, the others through ``main_guard``), in a working directory and
environment of the test's choosing, and returns what a subprocess would: exit code, stdout, stderr.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from gan_lightning.commands import LOG_FORMAT

# The module whose main() runs ``python -m gan_lightning.<command>``.
ENTRY_POINTS = {"data": "gan_lightning.data.__main__", "bench": "gan_lightning.bench.__main__",
                "compare": "gan_lightning.compare.__main__"}  # fmt: skip


@dataclass
class Result:
    """What a finished command left: as ``subprocess.CompletedProcess`` has it."""

    args: List[str]
    returncode: int
    stdout: str
    stderr: str


def with_test_defaults(overrides: Sequence[str]) -> List[str]:
    """``overrides`` with ``metrics=none`` and ``logger=csv`` unless they choose otherwise: a test run measures sample
    quality and starts W&B only where its test is about them (the commands' defaults, metrics=auto and W&B, cost
    seconds per run)."""
    overrides = list(overrides)
    keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
    presets = any(k in ("experiment", "hparams_search") for k in keys)  # presets may choose either
    if not presets and not any(k == "metrics" for k in keys):
        overrides.append("metrics=none")
    if not presets and not any(k == "logger" or k.startswith("logger.") for k in keys):
        overrides.append("logger=csv")
    return overrides


@contextlib.contextmanager
def working_directory(path: Optional[Path]) -> Iterator[None]:
    before = os.getcwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def logging_to(stream: io.StringIO) -> Iterator[None]:
    """Log records to ``stream`` for the block, as ``main_guard``'s logging set-up sends them to a new process's
    stderr (in this process the root logger already has handlers, so its set-up leaves them as they are)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def environment(changes: Optional[Dict[str, Optional[str]]]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None: unset) for the block."""
    saved = {key: os.environ.get(key) for key in changes or {}}
    for key, value in (changes or {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def command(
    program: str, args: Sequence[str], cwd: Optional[Path] = None, env: Optional[Dict[str, Optional[str]]] = None
) -> Result:
    """``python -m gan_lightning.<program> ARGS`` in this process. An exception that would end the process with a
    traceback is returned as exit code 1 with the traceback on stderr, as Python would print it."""
    from gan_lightning.commands import main_guard

    module = importlib.import_module(ENTRY_POINTS.get(program, f"gan_lightning.{program}"))
    argv = [str(a) for a in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        working_directory(cwd),
        environment(env),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            if program == "run":  # Hydra sets up logging to this stderr itself
                code = module.main(argv)
            else:
                with logging_to(stderr):
                    main_guard(lambda: module.main(argv))
                code = 0
        except SystemExit as exit:
            code = exit.code
        except Exception:  # noqa: BLE001  (what the process would print before exiting with 1)
            traceback.print_exc(file=stderr)
            code = 1
    if isinstance(code, str):  # sys.exit("message"): printed, exit status 1
        stderr.write(code + "\n")
        code = 1
    return Result(
        ["python", "-m", f"gan_lightning.{program}", *argv], int(code or 0), stdout.getvalue(), stderr.getvalue()
    )


def run_command(
    args: Sequence[str],
    cwd: Optional[Path] = None,
    env: Optional[Dict[str, Optional[str]]] = None,
    defaults: bool = True,
) -> Result:
    """``python -m gan_lightning.run ARGS`` in this process (with the tests' defaults unless ``defaults`` is false)."""
    return command("run", with_test_defaults(args) if defaults else args, cwd=cwd, env=env)

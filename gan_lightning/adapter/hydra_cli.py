"""Hydra's command line as gan_lightning reads it: its flags, and the words of its composition errors. The one place
that knows them; tests/test_hydra_contract.py checks every table and pattern here against the installed Hydra, so
that an upgrade which changes them fails there, not silently in a user's message."""

from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple

# Hydra's flags: those followed by a value, those without one (--info takes a topic when one follows).
FLAGS_WITH_VALUE = {"-c", "--cfg", "-p", "--package", "-cp", "--config-path", "-cn", "--config-name", "-cd",
                    "--config-dir", "--experimental-rerun"}  # fmt: skip
FLAGS = {"-m", "--multirun", "-h", "--help", "--hydra-help", "--resolve", "-r", "--run", "-sc", "--shell-completion",
         "--version", "--info", "-i"}  # fmt: skip
INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
# Flags after which Hydra runs nothing: it prints help or the config.
NOTHING_RUNS = {"-h", "--help", "--hydra-help", "--info", "-i", "-c", "--cfg", "-sc", "--shell-completion", "--version"}
# Hydra's modes, of which a command line takes one: each flag's spellings.
MODES = {"-m": ("-m", "--multirun"), "--cfg": ("-c", "--cfg"), "--info": ("-i", "--info"),
         "--shell-completion": ("-sc", "--shell-completion"), "--run": ("-r", "--run")}  # fmt: skip

MISSING_OPTION = re.compile(r"Could not find '([^']+)/([^'/]+)'")
KEY_EXISTS = "An item is already at"
EXPECTED_TYPE = re.compile(r"converted to (\w+)|is not a valid (bool)")


def missing_option(error: Exception) -> Optional[Tuple[str, str]]:
    """(group, option) of a MissingConfigException for an option the group lacks."""
    match = MISSING_OPTION.search(str(error))
    return match.groups() if match else None


def adds_existing_key(error: Exception) -> bool:
    """Whether a composition failed on ``+key=value`` for a key the config has."""
    return KEY_EXISTS in str(error)


def expected_type(cause: Exception) -> Optional[str]:
    """The type OmegaConf could not convert a value to (``Integer``, ``Float``, ``Boolean``, ``String``)."""
    match = EXPECTED_TYPE.search(str(cause))
    if match is None:
        return None
    return match.group(1) or "Boolean"


def names_a_list(cause: Exception) -> bool:
    """Whether OmegaConf refused a single value for a list setting."""
    return "ListConfig" in str(cause)


def override_at_fault(error: Exception, overrides: Sequence[str]) -> str:
    """The override a composition failed on: the one whose key OmegaConf's error names (its ``full_key``), else the one
    with the longest key Hydra's message mentions (``model.depth``, not ``model``, for "Could not override
    'model.depth'")."""
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    named = getattr(error.__cause__, "full_key", None)
    exact = [o for o, key in zip(overrides, keys) if named and key == named]
    mentioned = sorted(((len(key), o) for o, key in zip(overrides, keys) if key in str(error)), reverse=True)
    return exact[0] if exact else mentioned[0][1] if mentioned else str(error)


def first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def split_argv(argv: Sequence[str]) -> Tuple[List[str], bool]:
    """The overrides of a command line (flags and their values left out) and whether it is a multirun."""
    overrides, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in FLAGS_WITH_VALUE:
            skip = True
        elif not token.startswith("-"):
            overrides.append(token)
    return overrides, any(token in MODES["-m"] for token in argv)


def hydra_argv(argv: Sequence[str]) -> List[str]:
    """``argv`` with Hydra's flags (and their values) first, the overrides after them in their order: Hydra's parser
    takes overrides only after the last flag, people type them anywhere."""
    flags: List[str] = []
    overrides: List[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in FLAGS_WITH_VALUE and i + 1 < len(tokens):
            flags += tokens[i : i + 2]
            i += 2
            continue
        if token in MODES["--info"] and i + 1 < len(tokens) and tokens[i + 1] in INFO_TOPICS:
            flags += tokens[i : i + 2]
            i += 2
            continue
        (flags if token in FLAGS or token.startswith("--") else overrides).append(token)
        i += 1
    return flags + overrides

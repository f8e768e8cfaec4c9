"""The command line of ``python -m gan_lightning.run``, checked before Hydra runs it.

Hydra answers a wrong key, type or option with several lines of its own text and exit code 1, and accepts a ``+key``
the schema does not know (then ignores it). Here each override is parsed and the first job's config composed as Hydra
will compose it; what is wrong becomes one ``UserError`` naming the setting, its value and what is allowed (exit code
2, nothing written). Also checked: the search space of an Optuna sweep, the run or sweep directory, and that a SLURM
launcher has a cluster to submit to. Hydra's flags may come anywhere on the line (``a=b -m c=d``). What this reads of
Hydra itself (its flags, the words of its errors) is in gan_lightning/adapter/hydra_cli.py, checked against Hydra.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, List, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lightning.adapter.hydra_cli import (
    MODES,
    NOTHING_RUNS,
    adds_existing_key,
    expected_type,
    first_line,
    missing_option,
    names_a_list,
    override_at_fault,
    split_argv,
)
from gan_lightning.config import CONF_DIR, compose
from gan_lightning.errors import UserError
from gan_lightning.runs.jobs import slurm_settings

SLURM_PING_TIMEOUT_S = 10
NAME_MAX = 255  # bytes of one file name, on the file systems Linux uses
MAX_CHECKED_JOBS = 64  # a grid sweep of up to this many jobs has each one's settings checked before any starts
EXPECTED_TYPES = {"Integer": "a whole number", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def runs_something(argv: Sequence[str]) -> bool:
    return not any(token in NOTHING_RUNS for token in argv)


def check_one_mode(argv: Sequence[str]) -> None:
    """Refuse a command line that asks for two of Hydra's modes (a sweep and printing the config, say)."""
    given = [mode for mode, spellings in MODES.items() if any(token in spellings for token in argv)]
    if len(given) > 1:
        raise UserError(
            f"{' and '.join(given)} cannot be given together: a command line runs one job, runs a sweep (-m), prints "
            "the composed config of one job (--cfg job), prints Hydra's view of it (--info) or installs shell "
            f"completion (-sc); drop all but one (for the config of a sweep's job: the job's settings without -m)."
        )


def check_command_line(argv: Sequence[str]) -> DictConfig:
    """Raise UserError for the first thing of ``argv`` (flags first, as hydra_argv orders them) that Hydra would
    refuse with its own text, or accept and ignore; return the first job's config, Hydra's node included."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides, multirun = split_argv(argv)
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.append(parser.parse_override(text))
        except Exception as error:  # Hydra's grammar: its message names the token it stopped at
            raise not_a_setting(text, error) from None
    first_job = []
    for text, override in zip(overrides, parsed):
        if override.is_interval_sweep():  # a search's interval: its ends are checked as the search checks them
            from gan_lightning.study.space import distribution

            distribution(text, override)
        if override.is_sweep_override() and not multirun:
            raise UserError(
                f"{text} lists several values, which only a multirun runs: add -m (python -m gan_lightning.run -m {text} ...)."
            )
        first_job.append(first_value(text, override))
    cfg = composed(first_job, overrides)
    for text, override in zip(overrides, parsed):
        if override.is_add() or override.is_force_add():
            check_added_key(text, override.key_or_group, cfg)
    check_search_space(cfg, overrides)
    check_launcher(cfg)
    check_output_directory(cfg, multirun)
    check_jobs(cfg, overrides, parsed)
    return cfg


def check_settings(cfg: DictConfig) -> None:
    """The checks a run makes of its settings before it starts (gan_lightning.config.validate), made here."""
    from gan_lightning.config import to_config, validate

    job = copy.copy(cfg)
    with open_dict(job):
        job.pop("hydra", None)
    validate(to_config(job))


def check_jobs(first: DictConfig, overrides: List[str], parsed: List[Any]) -> None:
    """Every job of a grid sweep (up to MAX_CHECKED_JOBS) is refused or accepted here as its run would refuse or accept
    it, so that a bad value anywhere in the sweep stops it before any job starts; a larger sweep has its first job
    checked. A search is not: its trials are drawn, and one that fails is a failed trial the study goes on without."""
    from gan_lightning.study.settings import is_search

    if is_search(first.get("hydra")):
        return
    check_settings(first)
    swept = [(index, list(o.sweep_string_iterator())) for index, o in enumerate(parsed) if o.is_discrete_sweep()]
    if not swept or math.prod(len(values) for _, values in swept) > MAX_CHECKED_JOBS:
        return
    keys = [parsed[index].key_or_group for index, _ in swept]
    fixed = [text for index, text in enumerate(overrides) if index not in {i for i, _ in swept}]
    # A swept setting (not a config group) is set on the first job's config: no composition per job.
    by_value = not any((CONF_DIR / key).is_dir() for key in keys)
    for values in itertools.islice(itertools.product(*(v for _, v in swept)), 1, None):
        job = [f"{key}={value}" for key, value in zip(keys, values)]
        try:
            if by_value:
                cfg = copy.deepcopy(first)
                for key, (index, _), value in zip(keys, swept, values):
                    OmegaConf.update(cfg, key, parsed_value(overrides[index], value), force_add=True)
                check_settings(cfg)
            else:
                check_settings(composed(fixed + job, fixed + job))
        except UserError as error:
            raise UserError(f"{error} (in the sweep's job {' '.join(job)})") from None


def parsed_value(text: str, value: str) -> Any:
    """A value of a sweep as Hydra gives it to the job (``3`` an int, ``1e-3`` a float, ``a`` a string)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(f"{text.split('=', 1)[0]}={value}").value()


def not_a_setting(text: str, error: Exception) -> UserError:
    if "=" not in text:
        return UserError(
            f"{text!r} is not a key=value setting: a value with spaces is one argument only when quoted "
            f"(hydra.run.dir='/tmp/my runs'), and settings are key=value (see --help)."
        )
    detail = str(error).strip().splitlines()[0]
    return UserError(
        f"{text!r} is not a setting Hydra can read ({detail}); sweeps are written a,b,c or range(...), choice(...), interval(...)."
    )


def first_value(text: str, override: Any) -> str:
    """The override as the first job of a multirun has it: the first value of a sweep, the lower end of an interval."""
    if not override.is_sweep_override():
        return text
    key = text.split("=", 1)[0]
    try:
        return f"{key}={next(iter(override.sweep_string_iterator()))}"
    except Exception:  # an interval (Optuna): its lower end stands for it
        return f"{key}={override.value().start}"


def composed(first_job: List[str], overrides: List[str]) -> DictConfig:
    """The first job's config with Hydra's node, or UserError naming the override that breaks its composition."""
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    try:
        return compose(first_job, with_hydra=True)
    except MissingConfigException as error:
        found = missing_option(error)
        if found is None:
            raise UserError(first_line(error)) from None
        group, option = found
        raise UserError(
            f"{group}={option} is not allowed: one of {', '.join(group_options(group)) or '(none)'}."
        ) from None
    except ConfigCompositionException as error:
        cause = error.__cause__
        text = override_at_fault(error, overrides)
        key, _, value = text.lstrip("+~").partition("=")
        if adds_existing_key(error):
            raise UserError(
                f"{text}: {key} is a setting already, and + adds new ones only: write {key}={value} (no +)."
            ) from None
        if key.startswith("hydra.sweeper.params."):
            raise UserError(
                f"{text}: an Optuna parameter is given on the command line as SETTING=SPACE "
                f"('optimizer.g.lr=tag(log,interval(1e-4,1e-3))'), or under hydra.sweeper.params in a preset."
            ) from None
        if isinstance(cause, ValidationError) and names_a_list(cause) and not value.startswith("["):
            raise not_a_list(key, value, [job if text_of != text else f"{key}=[{value}]"
                                          for job, text_of in zip(first_job, overrides)]) from None  # fmt: skip
        if isinstance(cause, ValidationError):
            expected = expected_type(cause)
            allowed = EXPECTED_TYPES.get(expected, expected) if expected else "a value of the setting's type"
            raise UserError(f"{key}={value!r} is not allowed: {allowed}.") from None
        if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
            others = [job for job, text_of in zip(first_job, overrides) if text_of != text]
            raise unknown_key(key, value, others) from None
        raise UserError(f"{text}: {str(cause or error).strip().splitlines()[0]}") from None


def not_a_list(key: str, value: str, as_list: List[str]) -> UserError:
    """A single value for a list setting (``augment.policy=color``): the message the list would get, or how to write it."""
    try:
        check_settings(composed(as_list, as_list))
    except UserError as error:
        return error
    return UserError(f"{key}={value!r} is not allowed: a list, such as {key}=[{value}].")


def group_options(group: str) -> List[str]:
    folder = CONF_DIR / group
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def unknown_key(key: str, value: str, others: Sequence[str] = ()) -> UserError:
    """The message for a key the config (composed with the ``others`` overrides) has no setting for: where the first
    unknown part is, the option chosen there, and what settings it has."""
    try:
        cfg = compose(list(others), with_hydra=True)
    except Exception:  # another override is wrong too: the defaults name what there is
        cfg = compose([], with_hydra=True)
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default={}) or {}
    parts = key.split(".")
    node: Any = cfg if key.startswith("hydra.") else OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    for depth, part in enumerate(parts):
        if not isinstance(node, DictConfig) or part not in node:
            where = ".".join(parts[:depth]) or "the config"
            option = f" ({parts[0]}={choices[parts[0]]})" if depth and parts[0] in choices else ""
            known = list(node.keys()) if isinstance(node, DictConfig) else []
            settings = f"its settings: {', '.join(map(str, known))}" if known else "it has no settings"
            return UserError(f"{key}={value}: {where}{option} has no setting '{part}'; {settings}.")
        node = node[part]
    return UserError(f"{key}={value}: not a setting of the config.")


def check_added_key(text: str, key: str, cfg: DictConfig) -> None:
    """A ``+key=value`` whose key no schema has is refused: the run would accept it and never read it."""
    if "/" in key or (CONF_DIR / key).is_dir():
        return  # a config group (+experiment=...)
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    kind = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if kind is None or not dataclasses.is_dataclass(kind):
        return  # a node the schema leaves open (hydra.*, a callback's arguments)
    names = [field.name for field in dataclasses.fields(kind)]
    if leaf not in names:
        hint = " (a few steps with tiny metrics and no W&B: debug=fast_dev_run)" if leaf == "fast_dev_run" else ""
        where = parent_key or "the config"
        raise UserError(
            f"{text} adds a setting nothing reads: {where} has no '{leaf}'; its settings: {', '.join(names)}{hint}."
        )


def check_search_space(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """The parameters of a sweep's preset (a search's, hydra/sweeper=search, with its settings: check_search), each a
    setting of the config, each choice of a value the setting's type takes."""
    from gan_lightning.study.settings import is_search
    from gan_lightning.study.space import SearchSpace
    from gan_lightning.sweeps.search.sweeper import check_search

    if is_search(cfg.get("hydra")):
        space = check_search(cfg, [o for o in overrides if not o.startswith(("hydra.", "hydra/"))])
    elif OmegaConf.select(cfg, "hydra.sweeper.params", default=None):  # a preset's grid for the basic sweeper
        space = SearchSpace.parse(cfg.hydra.sweeper.params)
    else:
        return
    job = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    for key, dist in space.distributions.items():
        text = f"hydra.sweeper.params.{key}"
        group = (CONF_DIR / str(key)).is_dir()
        if not group and OmegaConf.select(job, str(key), default=None) is None and not has_key(job, str(key)):
            raise UserError(
                f"{text}: {key} is not a setting of the config (a search parameter names a setting, such as optimizer.d.lr)."
            )
        if hasattr(dist, "choices") and not group:
            check_choices(text, job, str(key), list(dist.choices))
        elif hasattr(dist, "choices"):  # a config group: each option drawn must exist, or its trial cannot compose
            options = group_options(str(key))
            unknown = [str(c) for c in dist.choices if str(c) not in options]
            if unknown:
                raise UserError(f"{text}: {key}={','.join(unknown)} is not allowed: one of {', '.join(options)}.")


def has_key(cfg: DictConfig, key: str) -> bool:
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    return isinstance(parent, DictConfig) and leaf in parent


def check_choices(text: str, cfg: DictConfig, key: str, choices: List[Any]) -> None:
    current = OmegaConf.select(cfg, key, default=None)
    choices = [c for c in choices if c is not None]  # null: an optional setting's "none" (the schema decides)
    if isinstance(current, bool):
        wrong = [c for c in choices if not isinstance(c, bool)]
    elif isinstance(current, int):
        wrong = [c for c in choices if not isinstance(c, int) or isinstance(c, bool)]
    elif isinstance(current, float):
        wrong = [c for c in choices if not isinstance(c, (int, float)) or isinstance(c, bool)]
    else:
        return
    if wrong:
        raise UserError(f"{text}: {key} takes {type(current).__name__} values, not {', '.join(map(repr, wrong))}.")


def check_launcher(cfg: DictConfig) -> None:
    """hydra/launcher=slurm submits with sbatch: a machine without SLURM is told so before anything is written."""
    if slurm_settings(cfg.get("hydra")) is None:
        return
    if shutil.which("sbatch") is None:
        raise UserError(
            "hydra/launcher=slurm submits jobs with SLURM's sbatch, which this machine does not have: run on a SLURM "
            "login node, or use hydra/launcher=basic or parallel here."
        )
    try:
        answer = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=SLURM_PING_TIMEOUT_S)
        reachable = answer.returncode == 0 and "UP" in answer.stdout
    except (OSError, subprocess.TimeoutExpired):
        reachable = False
    if not reachable:
        raise UserError(
            "hydra/launcher=slurm: SLURM's controller does not answer (scontrol ping), so no job can be submitted: start "
            "it, or run on a machine whose cluster is up."
        )


def check_output_directory(cfg: DictConfig, multirun: bool) -> None:
    """The run directory (or a multirun's sweep directory) can be made: not an existing file, names the file system
    takes, a parent the user may write to on a writable file system."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        path = Path(str(OmegaConf.select(cfg, key)))
    except Exception:  # an interpolation only Hydra's job resolves: Hydra's own checks stand
        return
    setting = f"{key}={path}" if len(str(path)) <= 200 else f"{key}={str(path)[:80]}...{str(path)[-40:]}"
    long_part = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
    if long_part is not None:
        raise UserError(
            f"{setting}: a part of it is {len(os.fsencode(long_part))} bytes long; a file system takes at most {NAME_MAX}: "
            f"choose a shorter {key}."
        )
    if path.exists() and not path.is_dir():
        raise UserError(f"{setting} is an existing file, not a folder: choose another {key}.")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{setting}: {existing} is a file, so no folder can be made under it: choose another {key}.")
    if read_only(existing):
        raise UserError(f"{setting}: {existing} is on a read-only file system: choose a {key} on a writable one.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{setting}: {existing} may not be written by this user: choose a {key} you may write to.")


def read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False

"""``python -m gan_lightning.run [overrides] [-m]``: compose the config, check it, train, write summary.json.

Hydra's command line; the run itself is ``gan_lightning.runs.lifecycle.run``. Returns the configured
``optimized_metric`` to Hydra sweepers. This module imports only what composing a config needs, so that
``--help`` and a refused setting answer at once.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

import gan_lightning.sweeps.parallel  # noqa: F401  (registers the resolver conf/hydra/launcher/parallel.yaml uses)
import gan_lightning.sweeps.slurm  # noqa: F401  (registers the resolvers conf/hydra/launcher/slurm.yaml uses)
from gan_lightning.adapter.hydra_cli import hydra_argv, split_argv
from gan_lightning.config import CONF_DIR
from gan_lightning.errors import USER_ERROR_EXIT, UserError
from gan_lightning.overrides import check_command_line, check_one_mode, composed, runs_something
from gan_lightning.runs import directory
from gan_lightning.runs import start_up_signals as signals
from gan_lightning.runs.lifecycle import quiet_dependencies
from gan_lightning.sweeps.report import reset_sweep_outcome, sweep_exit_code


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> Optional[float]:
    from gan_lightning.runs.lifecycle import run

    return run(cfg)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m gan_lightning.run ARGV``: Hydra's command line, in this process; returns the exit code (a run
    that fails exits through SystemExit with its own code). Hydra's flags may come anywhere; the overrides are
    checked first, so that a wrong one is one message and exit code 2 (gan_lightning/overrides.py)."""
    argv = hydra_argv(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        return print_help(argv)
    directory.command_started = time.time()
    start_up = signals.hold()  # the checks below import seconds of packages: a stop signal then ends the command
    try:
        return run_command_line(argv, start_up)
    except KeyboardInterrupt:  # a second Ctrl-C: at once, without a traceback
        print("stopped at once by a second Ctrl-C (SIGINT)", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        signals.release()


def run_command_line(argv: List[str], start_up: signals.StartUpSignals) -> int:
    try:
        check_one_mode(argv)
        cfg = check_command_line(argv) if runs_something(argv) else None
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    if cfg is not None:
        quiet_dependencies(bool(cfg.verbose))  # before Hydra's launcher starts the jobs
        if start_up.received is not None:
            name = signal.Signals(start_up.received).name
            print(f"stopped by {name} before the run began: nothing was written", file=sys.stderr)
            return 128 + start_up.received
    reset_sweep_outcome()
    saved, sys.argv = sys.argv, [sys.argv[0] if sys.argv else "gan_lightning.run", *argv]
    try:
        hydra_main()
    finally:
        sys.argv = saved
    return sweep_exit_code()  # a multirun exits non-zero unless every job completed


def print_help(argv: List[str]) -> int:
    try:
        print(help_text(split_argv(argv)[0]))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    return 0


USAGE = """usage: python -m gan_lightning.run [KEY=VALUE ...] [-m]    (or: gan-run ...)

Trains a GAN with the composed config and writes its run directory (samples/, checkpoints/, summary.json, csv/,
wandb/). -m (--multirun) runs one job per combination of the comma-separated values, range(...) or choice(...)
given; quote those for the shell: 'seed=range(16)'. Settings and flags may come in any order."""

LAUNCHERS = {
    "basic": "the default: one job after another in this process",
    "parallel": "jobs side by side on this machine, hydra.launcher.n_jobs at a time",
    "vectorized": "jobs that differ only in seed, trained as one computation in one process",
    "slurm": "each job a task of a SLURM job array (submitit), on the cluster's nodes",
}

FLAGS = """  -m, --multirun          a sweep: one job per combination of the values given
  --cfg job|hydra|all     print the composed config and exit (--resolve to resolve interpolations)
  --info [topic]          Hydra's view of the config: all, config, defaults, defaults-tree, plugins, searchpath
  --hydra-help            Hydra's own help (its flags and the hydra/ groups)
  -sc, --shell-completion install=bash   shell completion of groups and keys (see Hydra's docs)
  verbose=true            also what dependencies print (W&B's banner, Lightning's device lines)
  debug=fast_dev_run      a smoke run: 5 steps through everything a run does, the CSV log without W&B"""


def option_names(folder: Path) -> List[str]:
    return sorted(path.stem for path in folder.glob("*.yaml"))


def first_comment(path: Path) -> str:
    """The first line of a config file's leading comment, without the comment sign."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip().split(":")[0].rstrip(".")
        if line.strip():
            break
    return ""


def help_text(overrides: List[str]) -> str:
    """What --help prints: read from conf/ as it is, so that it never goes stale; Hydra's own help is --hydra-help."""
    groups = sorted(p for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")
    width = max(len(group.name) for group in groups) + 2
    lines = [USAGE, "", "Config groups (GROUP=OPTION):"]
    lines += [f"  {group.name + ':':<{width}}{', '.join(option_names(group))}" for group in groups]
    lines += ["", "Launchers of a sweep (-m hydra/launcher=NAME):"]
    launchers = {"basic": LAUNCHERS["basic"]}
    for name in option_names(CONF_DIR / "hydra" / "launcher"):
        launchers[name] = LAUNCHERS.get(name) or first_comment(CONF_DIR / "hydra" / "launcher" / f"{name}.yaml")
    width = max(len(name) for name in launchers) + 2
    lines += [f"  {name + ':':<{width}}{text}" for name, text in launchers.items()]
    lines += [
        "",
        "Flags and switches:",
        FLAGS,
        "",
        "Docs: README.md, docs/configuration.md (every setting), docs/scaling.md.",
        "",
    ]
    config = composed(overrides, overrides)
    with open_dict(config):
        config.pop("hydra", None)
    lines += [f"Config{' with ' + ' '.join(overrides) if overrides else ''} (override any key: KEY=VALUE):", ""]
    lines.append(OmegaConf.to_yaml(config).rstrip())
    return "\n".join(lines)


def command_line() -> None:
    """``python -m gan_lightning.run`` and ``gan-run``: main()'s exit code. The process then only closes files (W&B's
    exit handlers): a Ctrl-C that comes now, the second of two, is ignored rather than ending it in a traceback."""
    try:
        code = main()
    except SystemExit as done:
        code = done.code
    finally:
        signals.ignore(signal.SIGINT)
    sys.exit(code)


if __name__ == "__main__":
    command_line()

"""``python -m gan_lightning.run [overrides] [-m]``: compose the config, check it, train, write summary.json.

Hydra's command line; the run itself is ``gan_lightning.runs.lifecycle.run``. Returns the configured
``optimized_metric`` to Hydra sweepers. This module imports only what composing a config needs, so that
``--help`` and a refused setting answer at once.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import hydra
from omegaconf import DictConfig

import gan_lightning.sweeps.parallel  # noqa: F401  (registers the resolver conf/hydra/launcher/parallel.yaml uses)
import gan_lightning.sweeps.slurm  # noqa: F401  (registers the resolvers conf/hydra/launcher/slurm.yaml uses)
from gan_lightning.config import CONF_DIR
from gan_lightning.errors import USER_ERROR_EXIT, UserError
from gan_lightning.overrides import check_command_line, hydra_argv, runs_something
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
    if runs_something(argv):
        try:
            cfg = check_command_line(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return USER_ERROR_EXIT
        quiet_dependencies(bool(cfg.verbose))  # before Hydra's launcher starts the jobs
    reset_sweep_outcome()
    saved, sys.argv = sys.argv, [sys.argv[0] if sys.argv else "gan_lightning.run", *argv]
    try:
        hydra_main()
    finally:
        sys.argv = saved
    return sweep_exit_code()  # a multirun exits non-zero unless every job completed


if __name__ == "__main__":
    sys.exit(main())

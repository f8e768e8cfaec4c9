"""Compose configs from conf/ exactly as ``python -m gan_lightning.run`` does, and run a job in-process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from gan_lightning.config import CONF_DIR, compose  # noqa: F401  (CONF_DIR: for the tests)
from gan_lightning.runs import directory
from gan_lightning.runs.lifecycle import run
from gan_lightning.runs.summary import read_summary
from tests.helpers.commands import with_test_defaults


def compose_config(overrides: List[str] = (), with_hydra: bool = False) -> DictConfig:
    return compose(overrides, with_hydra)


def run_in_process(overrides: List[str], run_dir: Path, defaults: bool = True) -> Dict[str, Any]:
    """One job through ``gan_lightning.runs.lifecycle.run`` with Hydra's job context set up (with the tests' defaults, no
    metrics and a CSV log, unless ``overrides`` choose otherwise or ``defaults`` is false); returns its summary."""
    cfg = compose_config(with_test_defaults(overrides) if defaults else list(overrides), with_hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.mode = RunMode.RUN
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    # As the command does: it starts, then Hydra makes the job's folder (the margin: the file system's coarse clock).
    directory.command_started = time.time() - 1.0
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    result = run(cfg)
    summary = read_summary(run_dir)
    summary["returned"] = result
    return summary

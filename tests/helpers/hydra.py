"""Compose configs from conf/ exactly as ``python -m gan_lightning.run`` does, and run a job in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

import gan_lightning.config  # noqa: F401  (registers the schemas)
from gan_lightning.run import run
from gan_lightning.summary import read_summary

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: List[str] = (), with_hydra: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=with_hydra)


def run_in_process(overrides: List[str], run_dir: Path) -> Dict[str, Any]:
    """One job through ``gan_lightning.run.run`` with Hydra's job context set up; returns its summary."""
    cfg = compose_config(overrides, with_hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.mode = RunMode.RUN
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    result = run(cfg)
    summary = read_summary(run_dir)
    summary["returned"] = result
    return summary

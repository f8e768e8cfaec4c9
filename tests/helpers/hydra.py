"""Compose configs from conf/ exactly as ``python -m gan_lightning.run`` does, and run a job in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from gan_lightning.config import CONF_DIR, compose  # noqa: F401  (CONF_DIR: for the tests)
from gan_lightning.run import run
from gan_lightning.summary import read_summary


def compose_config(overrides: List[str] = (), with_hydra: bool = False) -> DictConfig:
    return compose(overrides, with_hydra)


def metrics_as_asked(overrides: List[str]) -> List[str]:
    """``overrides`` with ``metrics=none`` unless they choose metrics (metrics=..., or a preset that may): a test job
    measures sample quality only where its test asks for it. The default, metrics=auto, would evaluate every image
    run with the Fashion-MNIST feature extractor."""
    chooses = any(o.lstrip("+~").startswith(("metrics=", "experiment=", "hparams_search=")) for o in overrides)
    return list(overrides) if chooses else [*overrides, "metrics=none"]


def run_in_process(overrides: List[str], run_dir: Path, metrics_default: bool = False) -> Dict[str, Any]:
    """One job through ``gan_lightning.run.run`` with Hydra's job context set up (sample quality measured only when
    ``overrides`` ask for it, or with ``metrics_default``: the command's own default); returns its summary."""
    cfg = compose_config(list(overrides) if metrics_default else metrics_as_asked(overrides), with_hydra=True)
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

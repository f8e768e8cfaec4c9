"""Loggers: Weights & Biases (offline unless configured online) and a local CSV log that never fails."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from pytorch_lightning.loggers import CSVLogger, Logger

from gan_lightning.config import LoggerConfig

log = logging.getLogger("gan_lightning")

SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


def scrub_secrets(tree: Any) -> Any:
    """A copy of a config tree without values whose key names a secret (API keys, tokens, passwords)."""
    if isinstance(tree, dict):
        return {k: scrub_secrets(v) for k, v in tree.items() if not any(m in str(k).lower() for m in SECRET_MARKERS)}
    if isinstance(tree, list):
        return [scrub_secrets(v) for v in tree]
    return tree


def build_loggers(cfg: LoggerConfig, run_dir: Path, name: str, group: Optional[str], tags: List[str], hparams: Dict[str, Any]) -> List[Logger]:
    loggers: List[Logger] = []
    wandb_failed = False
    if cfg.wandb and cfg.mode != "disabled":
        try:
            from pytorch_lightning.loggers import WandbLogger

            wandb_logger = WandbLogger(
                project=cfg.project,
                entity=cfg.entity,
                group=group,
                name=name,
                tags=tags,
                job_type=cfg.job_type,
                save_dir=str(run_dir),
                offline=cfg.offline,
                log_model=cfg.log_model,
            )
            wandb_logger.experiment  # start the run now, so a failure is handled here rather than mid-training
            loggers.append(wandb_logger)
        except Exception as error:  # a tracker must never cost a run
            wandb_failed = True
            log.warning(f"W&B could not start ({type(error).__name__}: {error}); training goes on with the CSV log in {run_dir / 'csv'}.")
    if cfg.csv or wandb_failed:
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    clean = scrub_secrets(hparams)
    for logger in loggers:
        logger.log_hyperparams(clean)
    return loggers


def finish_wandb(loggers: List[Logger]) -> Optional[str]:
    """Close this job's W&B run (a multirun starts the next job in the same process); return its folder."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger" and logger._experiment is not None:
            folder = logger.experiment.dir
            logger.experiment.finish()
            return str(Path(folder).parent)
    return None

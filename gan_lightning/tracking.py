"""Loggers: Weights & Biases (offline unless configured online) and a local CSV log that never fails."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from gan_lightning.config import LoggerConfig
from gan_lightning.metrics import SUMMARY_GOALS

log = logging.getLogger("gan_lightning")

SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


def scrub_secrets(tree: Any) -> Any:
    """A copy of a config tree without values whose key names a secret (API keys, tokens, passwords)."""
    if isinstance(tree, dict):
        return {k: scrub_secrets(v) for k, v in tree.items() if not any(m in str(k).lower() for m in SECRET_MARKERS)}
    if isinstance(tree, list):
        return [scrub_secrets(v) for v in tree]
    return tree


class GuardedWandbLogger(WandbLogger):
    """A W&B logger whose failures never stop training: the first one is reported, then W&B is left out."""

    failed = False

    def guarded(self, method, *args, **kwargs):
        if self.failed:
            return None
        try:
            return method(*args, **kwargs)
        except Exception as error:  # a tracker must never cost a run
            self.failed = True
            log.warning(f"W&B stopped logging ({type(error).__name__}: {error}); training goes on and the CSV log stays complete.")
            return None

    def log_metrics(self, metrics, step=None):
        self.guarded(super().log_metrics, metrics, step)

    def log_hyperparams(self, params):
        self.guarded(super().log_hyperparams, params)

    def log_image(self, key, images, step=None, **kwargs):
        self.guarded(super().log_image, key, images, step, **kwargs)

    def log_histograms(self, values: Dict[str, Any], step: int) -> None:
        """Histograms (for example of D's outputs) at a trainer step."""

        def log_now():
            import wandb

            self.experiment.log({**{k: wandb.Histogram(v.detach().float().cpu().numpy()) for k, v in values.items()}, "trainer/global_step": step})

        self.guarded(log_now)

    def upload_checkpoint(self, path: Path, steps_done: int) -> None:
        """The checkpoint as a model artifact of this run (queued for `wandb sync` when offline)."""

        def upload():
            import wandb

            artifact = wandb.Artifact(f"model-{self.experiment.id}", type="model", metadata={"step": steps_done})
            artifact.add_file(str(path), name=Path(path).name)
            self.experiment.log_artifact(artifact, aliases=["latest", f"step-{steps_done}"])

        self.guarded(upload)


def build_loggers(cfg: LoggerConfig, run_dir: Path, name: str, group: Optional[str], tags: List[str], hparams: Dict[str, Any]) -> List[Logger]:
    """W&B and/or CSV loggers, with ``hparams`` (already free of secrets) logged as the run's config."""
    loggers: List[Logger] = []
    wandb_failed = False
    if cfg.wandb and cfg.mode != "disabled":
        try:
            wandb_logger = GuardedWandbLogger(
                project=cfg.project,
                entity=cfg.entity,
                group=group,
                name=name,
                tags=tags,
                job_type=cfg.job_type,
                save_dir=str(run_dir),
                offline=cfg.offline,
                log_model=False,  # checkpoints are uploaded by PeriodicCheckpoint (logger.log_model)
            )
            wandb_logger.upload_checkpoints = cfg.log_model
            define_summaries(wandb_logger.experiment)  # starts the run now: a failure is handled here, not mid-training
            loggers.append(wandb_logger)
        except Exception as error:  # a tracker must never cost a run
            wandb_failed = True
            log.warning(f"W&B could not start ({type(error).__name__}: {error}); training goes on with the CSV log in {run_dir / 'csv'}.")
    if cfg.csv or wandb_failed:
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=""))
    for logger in loggers:
        logger.log_hyperparams(hparams)
    return loggers


def define_summaries(run) -> None:
    """Every series on the trainer's step axis; each metric's run summary is its best value, not its last."""
    for name, goal in SUMMARY_GOALS.items():
        run.define_metric(f"metrics/{name}", step_metric="trainer/global_step", summary=goal)


def finish_wandb(loggers: List[Logger]) -> Optional[str]:
    """Close this job's W&B run (a multirun starts the next job in the same process); return its folder."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            folder = logger.experiment.dir
            logger.experiment.finish()
            return str(Path(folder).parent)
    return None

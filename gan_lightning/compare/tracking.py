"""A comparison as a W&B run of its own: the tables of ``compare.csv`` and the findings, in the group of the sweep
it compares (job type ``compare``), so that the sweep's dashboard holds its conclusion. Offline without W&B
credentials, as every run is (``gan_lightning.tracking.credentials``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, List

from omegaconf import OmegaConf

from gan_lightning.tracking.credentials import logs_offline
from gan_lightning.tracking.service import FINISH_TIMEOUT_S, finish_run, stop_wandb_service

log = logging.getLogger("gan_lightning")


def sweep_logger(sweep: Path) -> tuple:
    """The W&B project and group of the runs in ``sweep``, and how long a run waits for W&B to close it, as their runs
    were logged (their .hydra/config.yaml), or the defaults: project gan_lightning, the sweep directory's last two parts
    as the group."""
    project, group, finish_timeout_s = "gan_lightning", "_".join(sweep.resolve().parts[-2:]), FINISH_TIMEOUT_S
    configs = [sweep / ".hydra" / "config.yaml", *sorted(sweep.glob("*/.hydra/config.yaml"))]
    for path in configs:
        if path.is_file():
            logger = OmegaConf.load(path).get("logger", {})
            project = logger.get("project") or project
            group = logger.get("group") or group
            finish_timeout_s = float(logger.get("finish_timeout_s") or finish_timeout_s)
            break
    return project, group, finish_timeout_s


def log_comparison(out: Path, sweep: Path, columns: List[str], rows: List[List[Any]], sentences: List[str]) -> None:
    import wandb

    project, group, finish_timeout_s = sweep_logger(sweep)
    mode = "offline" if logs_offline(os.environ.get("WANDB_MODE", "auto")) else "online"
    run = wandb.init(project=project, group=group, job_type="compare", name=f"compare {group}", dir=str(out),
                     mode=mode, settings=wandb.Settings(silent=True), reinit="create_new")  # fmt: skip
    try:
        cells = [[None if value == "" else value for value in row] for row in rows]  # a blank cell: no value
        table = wandb.Table(columns=columns, data=cells, allow_mixed_types=True)
        findings = wandb.Table(columns=["finding"], data=[[text] for text in sentences])
        run.log({"compare/table": table, "compare/findings": findings})
    finally:
        # The command's last W&B work: its service is shut down before the command returns (a service that does not
        # answer is stopped).
        if finish_run(run, finish_timeout_s):
            stop_wandb_service()
    log.info(f"W&B: the comparison is run {run.id} ({mode}) in group {group}, in {out / 'wandb'}")

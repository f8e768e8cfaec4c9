"""What a command concludes about a sweep, as a W&B run of its own in the sweep's group (job type ``compare`` for a
comparison, ``study`` for a search's report): its tables and figures, so that the sweep's dashboard holds its
conclusion. Offline without W&B credentials, as every run is (``gan_lightning.tracking.credentials``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from omegaconf import OmegaConf

from gan_lightning.tracking.credentials import logs_offline
from gan_lightning.tracking.service import FINISH_TIMEOUT_S, finish_run, stop_wandb_service

log = logging.getLogger("gan_lightning")

Table = Tuple[Sequence[str], Sequence[Sequence[Any]]]  # columns and rows


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


def log_sweep_tables(
    out: Path, sweep: Path, job_type: str, tables: Dict[str, Table], images: Dict[str, Path] = None
) -> None:
    """One W&B run in ``sweep``'s group, written under ``out``: each table (a blank cell: no value) and image by key."""
    import wandb

    project, group, finish_timeout_s = sweep_logger(sweep)
    mode = "offline" if logs_offline(os.environ.get("WANDB_MODE", "auto")) else "online"
    run = wandb.init(project=project, group=group, job_type=job_type, name=f"{job_type} {group}", dir=str(out),
                     mode=mode, settings=wandb.Settings(silent=True), reinit="create_new")  # fmt: skip
    try:
        logged: Dict[str, Any] = {}
        for key, (columns, rows) in tables.items():
            cells = [[None if value == "" else value for value in row] for row in rows]
            logged[key] = wandb.Table(columns=list(columns), data=cells, allow_mixed_types=True)
        for key, path in (images or {}).items():
            if Path(path).is_file():
                logged[key] = wandb.Image(str(path))
        run.log(logged)
    finally:
        # The command's last W&B work: its service is shut down before the command returns (a service that does not
        # answer is stopped).
        if finish_run(run, finish_timeout_s):
            stop_wandb_service()
    log.info(f"W&B: the {job_type} is run {run.id} ({mode}) in group {group}, in {out / 'wandb'}")


def log_comparison(out: Path, sweep: Path, columns: List[str], rows: List[List[Any]], sentences: List[str]) -> None:
    findings = (["finding"], [[text] for text in sentences])
    log_sweep_tables(out, sweep, "compare", {"compare/table": (columns, rows), "compare/findings": findings})

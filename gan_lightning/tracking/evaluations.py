"""Scores of a finished run's checkpoints (``python -m gan_lightning.evaluate runs=...``) in the run's own W&B run,
continued under its id, as series against the checkpoints' steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping

from gan_lightning.tracking.credentials import logs_offline
from gan_lightning.tracking.service import FINISH_TIMEOUT_S, finish_run


def log_evaluations(run_dir: Path, run_id: str, logger: Mapping[str, Any], new: List[Dict[str, Any]],
                    protocol: Dict[str, Any], best_and_last: Dict[str, Any]) -> None:  # fmt: skip
    """``new`` scores (one record per checkpoint: its step and metrics) as ``evaluation/*`` against
    ``evaluation/step``; the protocol in the run's config and each metric's best and last value in its summary.
    ``logger``: the run's logger settings, as its checkpoint stored them."""
    import wandb

    mode = "offline" if logs_offline(logger.get("mode") or "offline") else "online"
    run = wandb.init(id=run_id, resume="allow", dir=str(run_dir), project=logger.get("project"), entity=logger.get("entity"),
                     mode=mode, settings=wandb.Settings(silent=True))  # fmt: skip
    try:
        run.define_metric("evaluation/step")
        run.define_metric("evaluation/*", step_metric="evaluation/step")
        for record in new:
            run.log({"evaluation/step": record["step"], **{f"evaluation/{k}": v for k, v in record["metrics"].items()}})
        run.config.update({"evaluation_protocol": protocol}, allow_val_change=True)
        for name, values in best_and_last.items():
            run.summary[f"evaluation/{name}"] = values
    finally:
        finish_run(run, float(logger.get("finish_timeout_s", FINISH_TIMEOUT_S)))

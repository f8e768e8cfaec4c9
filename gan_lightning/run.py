"""``python -m gan_lightning.run [overrides] [-m]``: compose the config, build, train, write summary.json.

Returns the configured ``optimized_metric`` to Hydra sweepers.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_lightning.build import RunContext, build_datamodule, build_module, build_trainer
from gan_lightning.config import Config, to_config, validate
from gan_lightning.errors import UserError
from gan_lightning.summary import scalar_metrics, write_summary
from gan_lightning.tracking import finish_wandb

log = logging.getLogger("gan_lightning")


def quiet_dependencies() -> None:
    """Drop messages from dependencies that say nothing about this run (advertising, internal deprecations)."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # Epochs never end a run here (steps do), and logging counts steps across epochs.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(lambda record: not str(record.msg).startswith("💡"))

# Exit status of a run stopped by a user error (bad setting, missing data): no traceback is printed.
USER_ERROR_EXIT = 2


def run_context(cfg: DictConfig) -> RunContext:
    """Names for trackers, from Hydra's view of this job: overrides, sweep directory, chosen options."""
    hc = HydraConfig.get()
    choices = hc.runtime.choices
    overrides = [o for o in hc.overrides.task if not o.startswith(("hydra.", "hydra/"))]
    default_name = "-".join(str(choices.get(g)) for g in ("model", "data", "objective"))
    name = cfg.logger.name or (",".join(overrides) if overrides else default_name)
    group = cfg.logger.group
    if group is None and hc.mode == RunMode.MULTIRUN:
        group = "_".join(Path(hc.sweep.dir).parts[-2:])  # one group per sweep
    tags = [str(choices.get(g)) for g in ("model", "data", "objective")] + list(cfg.logger.tags)
    hparams = OmegaConf.to_container(cfg, resolve=True)
    hparams["choices"] = {k: v for k, v in choices.items() if not k.startswith("hydra")}
    return RunContext(Path(hc.runtime.output_dir), name=name, group=group, tags=tags, hparams=hparams)


def train(config: Config, context: RunContext, summary: Dict[str, Any]) -> None:
    validate(config)  # before any data is loaded or a file of ours written
    config.data.prepare()  # a missing data set stops the run before trackers start
    if config.trainer.num_threads is not None:
        torch.set_num_threads(config.trainer.num_threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = build_datamodule(config)
    module = build_module(config)
    trainer = build_trainer(config, context)
    try:
        trainer.fit(module, datamodule=datamodule)
    finally:
        summary["global_step"] = module.steps_done
        summary["metrics"] = scalar_metrics(trainer.callback_metrics)
        summary["wandb_dir"] = finish_wandb(trainer.loggers)
    summary["status"] = "completed"


def run(cfg: DictConfig) -> Optional[float]:
    quiet_dependencies()
    context = run_context(cfg)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    started = time.perf_counter()
    summary: Dict[str, Any] = {"status": "failed", "global_step": 0, "metrics": {}, "overrides": list(HydraConfig.get().overrides.task)}
    exit_code = 0
    try:
        train(to_config(cfg), context, summary)
    except UserError as error:
        summary["error"] = str(error)
        log.error(str(error))
        exit_code = USER_ERROR_EXIT
    except Exception as error:
        summary["error"] = f"{type(error).__name__}: {error}"
        if not multirun:
            raise
        # One broken job must not end a sweep: record it and let the others run.
        log.error(f"job failed:\n{traceback.format_exc()}")
    except BaseException:
        summary["status"] = "interrupted"
        raise
    finally:
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        write_summary(context.run_dir, summary)
    if summary["status"] == "completed":
        log.info(f"run directory: {context.run_dir} (samples/, checkpoints/, summary.json" + (", csv/" if (context.run_dir / "csv").exists() else "") + ")")
        if summary.get("wandb_dir"):
            log.info(f"W&B run: {summary['wandb_dir']} (upload with: wandb sync {summary['wandb_dir']})")
    if exit_code and not multirun:
        sys.exit(exit_code)
    metric = OmegaConf.select(cfg, "optimized_metric")
    return summary["metrics"].get(metric) if metric else None


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> Optional[float]:
    return run(cfg)


if __name__ == "__main__":
    main()

"""Loggers: Weights & Biases (offline unless configured online) and a local CSV log that never fails.

Both continue a resumed run: the CSV log keeps the rows of the steps its checkpoint covers and replaces the
rest, and W&B continues the run's one W&B run (the id in ``run.json``), skipping what earlier segments
already logged, so that every step is logged once however often the run was interrupted.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Set

from omegaconf import OmegaConf
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only
from torch import Tensor

from gan_lightning.adapter.access import drop_wandb_init_setting, wandb_run_started
from gan_lightning.files import atomic_write
from gan_lightning.metrics.goals import SUMMARY_GOALS
from gan_lightning.tracking.credentials import logs_offline, where_wandb_logs
from gan_lightning.tracking.service import WANDB_SERVER_TIMEOUT_S, finish_run, stop_wandb_service
from gan_lightning.tracking.wandb_records import logged_keys

if TYPE_CHECKING:
    from gan_lightning.config import LoggerConfig

log = logging.getLogger("gan_lightning")

# How long W&B may take to start (its own default is 90 s) before the run goes on without it.
WANDB_INIT_TIMEOUT_S = 15


class RunCSVLogger(Logger):
    """``csv/metrics.csv``: one row per logging call, with the step Lightning logs at; continued across resumes.

    Starting from a checkpoint of ``resume_step`` training steps, it keeps the rows of earlier steps and drops
    the later ones, which the resumed run logs again. Rows are written when ``save`` is called (by the
    checkpoint callback before every checkpoint, every ``FLUSH_EVERY_N_ROWS`` rows, and at the end), so a
    checkpoint never covers a step whose rows are not on disk.
    """

    FLUSH_EVERY_N_ROWS = 100

    def __init__(self, run_dir: Path, resume_step: int):
        super().__init__()
        self.folder = Path(run_dir) / "csv"
        self.path = self.folder / "metrics.csv"
        self.pending: List[Dict[str, Any]] = []
        self.columns: List[str] = []
        if rank_zero_only.rank == 0:  # as with every logger, only the first process of a data-parallel job writes
            self.continue_from(resume_step)

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.folder)

    def continue_from(self, resume_step: int) -> None:
        """Keep the rows of the steps the checkpoint covers, 1 to ``resume_step`` (a row logged during training step N
        carries step N); the resumed run logs the rest again."""
        rows = read_rows(self.path)
        kept = [row for row in rows if logged_step(row) is not None and logged_step(row) <= resume_step]
        self.columns = sorted({key for row in kept for key in row})
        if len(kept) != len(rows):
            self.rewrite(kept)

    def rewrite(self, rows: List[Dict[str, Any]]) -> None:
        lines = _csv_text(self.columns, rows, header=True)
        atomic_write(self.path, lines)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        atomic_write(self.folder / "hparams.yaml", OmegaConf.to_yaml(OmegaConf.create(dict(params))))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        self.pending.append({**{k: v.item() if isinstance(v, Tensor) else v for k, v in metrics.items()}, "step": step})
        if len(self.pending) >= self.FLUSH_EVERY_N_ROWS:
            self.save()

    @rank_zero_only
    def save(self) -> None:
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        new_columns = {key for row in rows for key in row} - set(self.columns)
        if new_columns or not self.path.exists():
            self.columns = sorted(set(self.columns) | new_columns)
            self.rewrite(read_rows(self.path) + rows)  # a new column: the header changes, so the file is rewritten
            return
        with open(self.path, "a", newline="") as f:
            f.write(_csv_text(self.columns, rows, header=False))

    def finalize(self, status: str) -> None:
        self.save()


def read_rows(path: Path) -> List[Dict[str, Any]]:
    """The rows of a CSV log. A kill in the middle of an append leaves a last line without its newline: it is left out."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return [row for row in csv.DictReader(io.StringIO(text)) if None not in row.values() and None not in row]


def logged_step(row: Mapping[str, Any]) -> Optional[int]:
    try:
        return int(float(row["step"]))
    except (KeyError, TypeError, ValueError):
        return None


def _csv_text(columns: List[str], rows: List[Mapping[str, Any]], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class GuardedWandbLogger(WandbLogger):
    """A W&B logger whose failures never stop training: the first one is reported, then W&B is left out.

    ``already_logged`` (step -> keys) holds what earlier segments of this W&B run logged: a resumed run
    sends only the rest, so no step appears twice in the run's history.
    """

    failed = False
    already_logged: Dict[int, Set[str]] = {}

    def unlogged(self, metrics: Mapping[str, Any], step: Optional[int]) -> Dict[str, Any]:
        done = self.already_logged.get(step, ()) if step is not None else ()
        return {k: v for k, v in metrics.items() if k not in done}

    def guarded(self, method, *args, **kwargs):
        if self.failed:
            return None
        try:
            return method(*args, **kwargs)
        except Exception as error:  # a tracker must never cost a run
            self.failed = True
            log.warning(
                f"W&B stopped logging ({type(error).__name__}: {error}); training goes on and the CSV log stays complete."
            )
            return None

    def log_metrics(self, metrics, step=None):
        metrics = self.unlogged(metrics, step)
        if metrics:
            self.guarded(super().log_metrics, metrics, step)

    def log_hyperparams(self, params):
        self.guarded(super().log_hyperparams, params)

    def log_image(self, key, images, step=None, **kwargs):
        self.guarded(super().log_image, key, images, step, **kwargs)

    def log_histograms(self, values: Dict[str, Any], step: int) -> None:
        """Histograms (for example of D's outputs) at a trainer step."""

        values = self.unlogged(values, step)

        def log_now():
            import wandb

            self.experiment.log(
                {
                    **{k: wandb.Histogram(v.detach().float().cpu().numpy()) for k, v in values.items()},
                    "trainer/global_step": step,
                }
            )

        if values:
            self.guarded(log_now)

    def upload_checkpoint(self, path: Path, steps_done: int) -> None:
        """The checkpoint as a model artifact of this run (queued for `wandb sync` when offline)."""

        def upload():
            import wandb

            artifact = wandb.Artifact(f"model-{self.experiment.id}", type="model", metadata={"step": steps_done})
            artifact.add_file(str(path), name=Path(path).name)
            self.experiment.log_artifact(artifact, aliases=["latest", f"step-{steps_done}"])

        self.guarded(upload)


def start_wandb(
    cfg: LoggerConfig,
    run_dir: Path,
    run_id: str,
    resume_step: int,
    offline: bool,
    alongside: bool = False,
    **names: Any,
) -> GuardedWandbLogger:
    """The run's W&B run, started now (so that a failure is handled here, not mid-training); continued when it exists.
    ``alongside``: one of several runs open at once in this process (the members of a vectorized group)."""
    import wandb

    logger = GuardedWandbLogger(
        id=run_id,
        resume="allow",
        project=cfg.project,
        entity=cfg.entity,
        job_type=cfg.job_type,
        save_dir=str(run_dir),
        offline=offline,
        log_model=False,  # checkpoints are uploaded by PeriodicCheckpoint (logger.log_model)
        settings=wandb.Settings(init_timeout=WANDB_INIT_TIMEOUT_S),
        **({"mode": "offline"} if offline else {}),
        # Without it, each wandb.init would end the run before it, and Lightning would reuse the global wandb.run.
        **({"reinit": "create_new"} if alongside else {}),
        **names,
    )
    drop_wandb_init_setting(logger, "anonymous")
    logger.upload_checkpoints = cfg.log_model
    logger.already_logged = logged_keys(run_dir / "wandb", run_id)
    define_summaries(logger.experiment)
    if resume_step > 0:
        backfill(logger, run_dir, resume_step)
    return logger


def backfill(logger: GuardedWandbLogger, run_dir: Path, resume_step: int) -> None:
    """Send the scalars of the steps the checkpoint covers that the CSV log holds and no earlier segment of the W&B
    run does: a kill can take W&B's last records with it, and those steps are not trained again."""
    for row in read_rows(run_dir / "csv" / "metrics.csv"):
        step = logged_step(row)
        if step is not None and step <= resume_step:
            logger.log_metrics({k: float(v) for k, v in row.items() if k not in ("step", "epoch") and v != ""}, step)


def build_loggers(
    cfg: LoggerConfig,
    run_dir: Path,
    run_id: str,
    resume_step: int,
    name: str,
    group: Optional[str],
    tags: List[str],
    hparams: Dict[str, Any],
    alongside: bool = False,
) -> List[Logger]:
    """W&B and/or CSV loggers, with ``hparams`` (already free of secrets) logged as the run's config.

    ``run_id`` names the run's one W&B run; ``resume_step`` is the step of the checkpoint the run continues from
    (0 for a new run). Online W&B that cannot start within WANDB_INIT_TIMEOUT_S falls back to offline W&B
    (the same run id, for a later ``wandb sync``), and W&B that cannot start at all to the CSV log.
    """
    loggers: List[Logger] = []
    wandb_failed = False
    if cfg.wandb and cfg.mode != "disabled":
        names = dict(name=name, group=group, tags=tags, alongside=alongside)
        offline = logs_offline(cfg.mode)
        if not alongside:  # a vectorized group says it once for its members (gan_lightning.sweeps.vectorized.members)
            log.info(where_wandb_logs(cfg.mode))
        if not offline:
            unreachable = wandb_server_unreachable()
            if unreachable:
                log.warning(
                    f"W&B's server does not answer ({unreachable}); logging offline (upload later with wandb sync)."
                )
                offline = True
        try:
            loggers.append(start_wandb(cfg, run_dir, run_id, resume_step, offline, **names))
        except Exception as error:  # a tracker must never cost a run
            if offline:
                wandb_failed = True
                log.warning(
                    f"W&B could not start ({type(error).__name__}: {error}); training goes on with the CSV log in {run_dir / 'csv'}."
                )
            else:
                log.warning(
                    f"W&B could not go online ({type(error).__name__}: {error}); logging offline (upload later with wandb sync)."
                )
                stop_wandb_service()  # the failed online start holds the run id, and W&B's settings, until it ends
                try:
                    loggers.append(start_wandb(cfg, run_dir, run_id, resume_step, True, **names))
                except Exception as second:
                    wandb_failed = True
                    log.warning(
                        f"W&B could not start offline either ({type(second).__name__}: {second}); the CSV log in {run_dir / 'csv'} goes on."
                    )
    if cfg.csv or wandb_failed:
        loggers.append(RunCSVLogger(run_dir, resume_step))
    for logger in loggers:
        logger.log_hyperparams(hparams)
    return loggers


def wandb_server_unreachable() -> Optional[str]:
    """Why the configured W&B server cannot be reached within WANDB_SERVER_TIMEOUT_S, or None when it answers."""
    import wandb

    url = os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url
    try:
        urllib.request.urlopen(url, timeout=WANDB_SERVER_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # an answer, if not a welcome one: the server is there
    except (OSError, ValueError) as error:
        return f"{url}: {getattr(error, 'reason', error)}"
    return None


def define_summaries(run) -> None:
    """Every series on the trainer's step axis. A metric's run summary is its last value, under the protocol in
    ``metrics_protocol`` (the final one, for a run that completed); its best periodic value goes to ``metrics_best``
    with that protocol: a best over evaluations of other sample counts would compare what cannot be compared."""
    for name in SUMMARY_GOALS:
        run.define_metric(f"metrics/{name}", step_metric="trainer/global_step")


def finish_wandb(
    loggers: List[Logger],
    metrics_protocol: Optional[Dict[str, Any]] = None,
    metrics_best: Optional[Dict[str, Any]] = None,
    timeout_s: float = 60.0,
    tags: Sequence[str] = (),
) -> Optional[str]:
    """Close this job's W&B run (a multirun starts the next job in the same process), its summary holding the
    protocol of its latest sample-quality metrics beside them, and their best periodic values with that protocol
    (``best_evaluation``); return its folder. A run W&B does not close within
    ``timeout_s`` is left as it is on disk (for ``wandb sync``), and W&B's service stopped: the run ends anyway."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and wandb_run_started(logger):
            folder = Path(logger.experiment.dir).parent
            if metrics_protocol and isinstance(logger, GuardedWandbLogger):
                logger.guarded(logger.experiment.summary.update, {"metrics_protocol": metrics_protocol})
            if metrics_best and isinstance(logger, GuardedWandbLogger):
                logger.guarded(logger.experiment.summary.update, {"metrics_best": metrics_best})
            if tags:  # how the run ended, where it ended otherwise than by completing (pruned)
                logger.experiment.tags = (*logger.experiment.tags, *tags)
            finish_run(logger.experiment, timeout_s)
            return str(folder)
    return None

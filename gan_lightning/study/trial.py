"""A job of ``hydra/sweeper=search`` as the Optuna trial it is.

The job finds its trial from its own Hydra config (the sweeper's settings name the storage and study; the job's
number is the trial's number), never from the sweep's memory, so the same code serves a job of the basic, parallel
or SLURM launcher. It reports the optimised metric at every periodic evaluation and stops when the pruner says so,
keeps the trial's heartbeat while it runs, and tells the study how it ended.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl

from gan_lightning.errors import UserError
from gan_lightning.study import records
from gan_lightning.study.settings import SearchSettings
from gan_lightning.study.storage import load_study

log = logging.getLogger("gan_lightning")


class TrialLink:
    """The trial a job runs: its study (opened from the storage), number, and what the job tells it."""

    def __init__(self, stored: Optional[records.StoredStudy], number: int, settings: SearchSettings):
        self.stored, self.number, self.settings = stored, number, settings
        self.stop_beating = threading.Event()

    @classmethod
    def of_job(cls, hydra_config: Any, lead: bool = True) -> TrialLink:
        """The job's trial; on the other processes of a data-parallel job (``lead`` False) a link without the study,
        which follows rank 0's decisions."""
        settings = SearchSettings.of(hydra_config.sweeper)
        stored = None
        if lead:
            sweep_dir = Path(hydra_config.runtime.cwd) / str(hydra_config.sweep.dir)
            stored = load_study(settings.storage, sweep_dir, settings.study_name, settings.build_pruner())
        return cls(stored, int(hydra_config.job.num), settings)

    def callback(self, metric: str) -> Optional[pl.Callback]:
        """What reports to the trial while it trains, where the study prunes."""
        return ReportToStudy(self if self.stored is not None else None, metric) if self.settings.prunes else None

    def begin(self, run_dir: Path) -> Dict[str, Any]:
        """Check that the trial still waits for this job (a lost trial's job that starts late must not train), note
        the run directory, and keep the heartbeat from now on; the trial as summary.json names it."""
        from optuna.trial import TrialState

        record = {"study": self.settings.study_name, "number": self.number}
        if self.stored is None:
            return record
        state = self.stored.trial(self.number).state
        if state != TrialState.RUNNING:
            raise UserError(
                f"trial {self.number} of study {self.settings.study_name} has ended already ({state.name.lower()}): "
                "its sweep gave it up, and runs its parameters as a new trial"
            )
        self.stored.set_user_attr(self.number, records.RUN_DIR, str(run_dir))
        self.stored.beat(self.number)
        threading.Thread(target=self.keep_beating, name=f"trial {self.number} heartbeat", daemon=True).start()
        return record

    def keep_beating(self) -> None:
        while not self.stop_beating.wait(self.settings.heartbeat_s):
            try:
                self.stored.beat(self.number)
            except Exception as error:  # a storage that does not answer now may answer at the next beat
                log.warning(f"trial {self.number}: heartbeat not recorded ({type(error).__name__}: {error})")

    def should_stop(self, value: float, step: int) -> bool:
        """Report the metric at ``step``; True when the pruner stops the trial there."""
        from optuna.trial import Trial

        trial = Trial(self.stored.study, self.stored.trial_id(self.number))
        trial.report(value, step)
        return trial.should_prune()

    def finish(self, summary: Dict[str, Any], value: Any) -> None:
        """Tell the study how the job ended: its value (a diverged run's is the worst one), pruned at its last
        report, or failed; a run stopped by a signal fails and has its parameters queued to run again."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        self.stop_beating.set()
        if self.stored is None:
            return
        status, study = summary.get("status"), self.stored.study
        try:
            if status == "interrupted":
                self.stored.stop(self.number, "interrupted", self.settings.retries)
            elif status == "pruned":
                study.tell(self.number, state=TrialState.PRUNED)
            elif status in ("completed", "diverged") and value is not None:
                study.tell(self.number, values=value if isinstance(value, list) else [value])
            else:
                study.tell(self.number, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            log.warning(f"trial {self.number} was ended by its sweep before this job could tell it ({status})")


class ReportToStudy(pl.Callback):
    """After each periodic evaluation: the optimised metric to the trial, and the trial stopped where the pruner says
    (with its checkpoint and logs, so it can be continued later). The final evaluation is not reported: it may use
    another protocol than the steps a pruner compares, and it is the trial's value anyway. Under DDP rank 0 asks
    and every process stops at the same step."""

    def __init__(self, link: Optional[TrialLink], metric: str):
        self.link, self.metric = link, metric
        self.ended_as: Optional[str] = None  # "pruned" once the pruner stopped the run
        self.reported: List[tuple] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        from gan_lightning.metrics.evaluation import Evaluation

        evaluation = next((c for c in trainer.callbacks if isinstance(c, Evaluation)), None)
        step = pl_module.steps_done
        if evaluation is None or evaluation.last_fired_step != step or step >= (pl_module.max_steps or math.inf):
            return
        prune = False
        if trainer.is_global_zero and self.link is not None:
            value = evaluation.latest.get(self.metric)
            if value is not None and math.isfinite(value):
                self.reported.append((step, value))
                prune = self.link.should_stop(float(value), step)
        if trainer.strategy.broadcast(prune, src=0):
            self.ended_as = "pruned"
            trainer.should_stop = True
            log.info(f"pruned at step {step}: {self.metric} = {self.reported[-1][1] if self.reported else '?'} is "
                     f"worse than the pruner keeps; checkpoint and logs kept")  # fmt: skip

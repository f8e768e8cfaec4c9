"""What Lightning's loop does at every step: it reads the training step's signature and whether validation is
enabled once per epoch, with the answers Lightning's own loop gives; without a profiler or progress output it
calls neither."""

from __future__ import annotations

import inspect

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loops.training_epoch_loop import _TrainingEpochLoop
from torch.utils.data import DataLoader

from gan_lightning.adapter.steploop import SettledAnswersEpochLoop, Unprofiled
from gan_lightning.config import to_config
from gan_lightning.runs.build import build_trainer
from gan_lightning.runs.context import RunContext
from gan_lightning.training.module import GAN
from tests.helpers.hydra import compose_config, run_in_process
from tests.test_module import TOY as MODULE_TOY
from tests.test_module import fit as fit_toy

FIVE_STEP_EPOCHS = ["data.num_samples=320", "data.batch_size=64"]  # 64 samples per batch and 320 samples
TOY = [*MODULE_TOY, *FIVE_STEP_EPOCHS]


def fit(tmp_path, *overrides, module_class=GAN, lightnings_loop=False, validation_batches=0):
    """Trains with the framework's trainer; ``lightnings_loop``: with the epoch loop Lightning builds instead;
    ``validation_batches``: a data module serving that many validation batches."""

    def before_fit(trainer, datamodule):
        if validation_batches:

            class Validated(type(datamodule)):
                def val_dataloader(self):
                    return DataLoader(torch.zeros(4 * validation_batches, 2), batch_size=4)

            datamodule.__class__ = Validated
        if lightnings_loop:
            trainer.fit_loop.epoch_loop = _TrainingEpochLoop(trainer, min_steps=None, max_steps=-1)

    module, trainer, _ = fit_toy(
        tmp_path, *FIVE_STEP_EPOCHS, *overrides, module_class=module_class, before_fit=before_fit
    )
    return module, trainer


@pytest.fixture
def questions(monkeypatch):
    """How often the training step's signature is read and the trainer is asked whether validation is enabled."""
    asked = {"signature": 0, "validation": 0}
    read_signature, validation_enabled = inspect.getfullargspec, pl.Trainer.enable_validation

    def counting_signature(function):
        asked["signature"] += function.__name__ == "training_step"
        return read_signature(function)

    def counting_validation(trainer):
        asked["validation"] += 1
        return validation_enabled.fget(trainer)

    monkeypatch.setattr(inspect, "getfullargspec", counting_signature)
    monkeypatch.setattr(pl.Trainer, "enable_validation", property(counting_validation))
    return asked


def asked_during(tmp_path, questions, steps: int, **kwargs) -> dict:
    questions.update(signature=0, validation=0)
    fit(tmp_path / f"{steps}{kwargs}", f"trainer.max_steps={steps}", **kwargs)
    return dict(questions)


def test_the_signature_and_validation_are_read_at_each_epochs_start_not_at_each_step(tmp_path, questions):
    # 12 and 14 steps both run 3 epochs of at most 5 steps; the 2 steps more ask nothing more.
    assert asked_during(tmp_path, questions, 12) == asked_during(tmp_path, questions, 14)
    assert isinstance(
        build_trainer(to_config(compose_config(TOY)), RunContext(tmp_path, name="test")).fit_loop.epoch_loop,
        SettledAnswersEpochLoop,
    )
    # Lightning's own loop asks both before every step.
    more = asked_during(tmp_path, questions, 14, lightnings_loop=True)
    fewer = asked_during(tmp_path, questions, 12, lightnings_loop=True)
    assert more["signature"] - fewer["signature"] == 2 and more["validation"] - fewer["validation"] == 2


class RecordsBatchIndex(GAN):
    def training_step(self, batch, batch_idx: int) -> None:
        self.indices = getattr(self, "indices", []) + [batch_idx]
        super().training_step(batch, batch_idx)


class TakesTheBatchOnly(GAN):
    def training_step(self, batch) -> None:
        self.batches_taken = getattr(self, "batches_taken", 0) + 1
        super().training_step(batch, None)


def test_the_step_gets_the_batch_index_by_lightnings_rule(tmp_path):
    module, _ = fit(tmp_path / "index", "trainer.max_steps=8", module_class=RecordsBatchIndex)
    assert module.indices == [0, 1, 2, 3, 4, 0, 1, 2]  # counted within each epoch of 5 steps
    module, _ = fit(tmp_path / "batch", "trainer.max_steps=8", module_class=TakesTheBatchOnly)
    assert module.batches_taken == 8 and module.steps_done == 8


class RecordsValidation(GAN):
    def validation_step(self, batch, batch_idx: int) -> None:
        self.validated_at = getattr(self, "validated_at", []) + [self.steps_done]


def test_a_module_that_validates_is_validated_when_lightnings_loop_would(tmp_path):
    ours, _ = fit(tmp_path / "ours", "trainer.max_steps=12", module_class=RecordsValidation, validation_batches=2)
    lightnings, _ = fit(
        tmp_path / "lightning",
        "trainer.max_steps=12",
        module_class=RecordsValidation,
        validation_batches=2,
        lightnings_loop=True,
    )
    assert ours.validated_at == lightnings.validated_at
    assert ours.validated_at[:4] == [5, 5, 10, 10]  # two batches at the end of each epoch


def test_without_a_profiler_every_hook_call_shares_one_null_context(tmp_path):
    trainer = build_trainer(to_config(compose_config(TOY)), RunContext(tmp_path, name="test"))
    assert isinstance(trainer.profiler, Unprofiled)
    assert trainer.profiler.profile("[Callback]SampleGrid.on_train_batch_end") is trainer.profiler.profile(
        "run_training_batch"
    )


def test_a_requested_profiler_writes_its_report_to_the_run_directory(tmp_path):
    run_in_process([*TOY, "trainer.max_steps=6", "trainer.profiler=simple"], tmp_path)
    report = (tmp_path / "fit-profile.txt").read_text()
    for action in (
        "run_training_batch",
        "[Callback]PeriodicCheckpoint.on_train_batch_end",
        "[SettledAnswersEpochLoop].train_dataloader_next",
    ):
        assert action in report, report


def test_progress_off_puts_no_progress_callback_in_the_loop(tmp_path):
    from gan_lightning.callbacks.progress import ProgressLog

    def progress_callbacks(every_n_steps: int) -> int:
        cfg = to_config(compose_config([*TOY, f"callbacks.progress_every_n_steps={every_n_steps}"]))
        return sum(isinstance(c, ProgressLog) for c in build_trainer(cfg, RunContext(tmp_path, name="test")).callbacks)

    assert progress_callbacks(0) == 0 and progress_callbacks(50) == 1

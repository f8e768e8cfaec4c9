"""The contract with W&B's offline run files, pinned like Lightning's private names: what the installed W&B writes
through its public API, a run and its resumed segment, the project's reader (gan_lightning/tracking/wandb_records.py)
reads back whole. A W&B release that changes the format fails here, not in a resumed run."""

from __future__ import annotations

import importlib.metadata
import time

import wandb

from gan_lightning.tracking.service import finish_run
from gan_lightning.tracking.wandb_records import WandbRun, logged_keys, segments, wait_until_written
from tests.helpers.commands import environment


def write_segment(folder, run_id, steps, config=None, summary=None):
    with environment({"WANDB_MODE": "offline", "WANDB_SILENT": "true"}):
        # mode given here too: W&B reads the environment once per process, and another test may have started it.
        run = wandb.init(id=run_id, resume="allow", dir=str(folder), project="contract", config=config or {},
                         mode="offline", settings=wandb.Settings(silent=True), reinit="create_new")  # fmt: skip
        run.define_metric("trainer/global_step")
        run.define_metric("loss/*", step_metric="trainer/global_step")
        for step in steps:
            run.log({"trainer/global_step": step, "loss/d": 1.0 / (step + 1), "nested": {"value": step}})
        for key, value in (summary or {}).items():
            run.summary[key] = value
        # As the project closes its runs: W&B's service may close the log after run.finish() returns.
        assert finish_run(run, timeout_s=60)


def test_the_pinned_wandb_minor_version_is_installed():
    major, minor = (int(part) for part in importlib.metadata.version("wandb").split(".")[:2])
    assert (major, minor) == (0, 31)


def test_an_offline_run_and_its_resumed_segment_read_back_as_written(tmp_path):
    run_id = "contract01"
    write_segment(tmp_path, run_id, range(0, 5), config={"lr": 2e-4, "model": {"name": "mlp"}})
    time.sleep(1.1)  # W&B names a segment's folder by the second it starts in
    write_segment(tmp_path, run_id, range(5, 8), summary={"metrics/fid": 12.5})

    files = segments(tmp_path / "wandb", run_id)
    assert len(files) == 2 and all(
        file.parent.name.startswith("offline-run-") and file.parent.name.endswith(run_id) for file in files
    )
    first, resumed = (WandbRun(file) for file in files)
    assert first.run["run_id"] == resumed.run["run_id"] == run_id and first.run["project"] == "contract"
    assert first.config["lr"] == 2e-4 and first.config["model"] == {"name": "mlp"}
    assert [row["trainer/global_step"] for row in first.history] == [0, 1, 2, 3, 4]
    assert [row["trainer/global_step"] for row in resumed.history] == [5, 6, 7]
    assert [value for _, value in resumed.metric("loss/d")] == [1 / 6, 1 / 7, 1 / 8]
    assert resumed.history[0]["nested"] == {"value": 5}  # a logged dict comes back nested, as it was logged
    assert resumed.summary["metrics/fid"] == 12.5
    assert first.exit_code == 0 and resumed.exit_code == 0
    # What a resumed project run reads to log no step twice: every key each step logged, over both segments.
    logged = logged_keys(tmp_path / "wandb", run_id)
    assert sorted(logged) == list(range(8)) and logged[7] == {"loss/d", "nested"}


def test_waiting_for_a_runs_log_ends_when_its_exit_record_is_on_disk_and_not_before(tmp_path):
    write_segment(tmp_path, "closed01", range(3))
    (log,) = segments(tmp_path / "wandb", "closed01")
    whole = log.read_bytes()
    log.write_bytes(whole[:7])  # what a reader finds while W&B's service still holds the tail: the header alone
    started = time.monotonic()
    assert not wait_until_written(log.parent, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    log.write_bytes(whole)
    assert wait_until_written(log.parent, timeout_s=0) and WandbRun(log).exit_code == 0

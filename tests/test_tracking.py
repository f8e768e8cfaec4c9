"""What reaches W&B, read back from the real offline run files; tracker failures; the local report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import pytest
from PIL import Image

from gan_lightning.results.runs import describe_machine
from gan_lightning.runs.context import naming_overrides
from gan_lightning.runs.summary import read_summary
from gan_lightning.tracking.wandb_records import (
    FIRST,
    FULL,
    LAST,
    MIDDLE,
    TransactionLog,
    WandbRecordError,
    WandbRun,
    _chunks,
    find_wandb_file,
)
from tests.conftest import cli
from tests.helpers.commands import run_command
from tests.helpers.hydra import run_in_process

SWEEP = ["-m", "objective=minimax,nonsaturating", "data=ring8", "model=mlp", "logger=wandb", "trainer.max_steps=100", "trainer.log_every_n_steps=10",
         "metrics=toy2d", "metrics.every_n_steps=50", "callbacks.samples_every_n_steps=50", "logger.log_model=true"]  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A real 2-job multirun with the default logger (W&B offline + CSV)."""
    folder = tmp_path_factory.mktemp("tracking") / "sweep"
    result = run_command([*SWEEP, f"hydra.sweep.dir={folder}"], cwd=folder.parent)
    assert result.returncode == 0, result.stderr
    return folder


def test_each_job_is_one_offline_run_in_the_sweep_group(sweep):
    runs = [WandbRun(sweep / job) for job in ("0", "1")]
    group = f"{sweep.parent.name}_{sweep.name}"  # the sweep directory's last two parts
    assert [r.run["group"] for r in runs] == [group, group]
    # Named by what the sweep varies: the other overrides are the same for every job.
    assert [r.run["display_name"] for r in runs] == ["objective=minimax", "objective=nonsaturating"]
    assert runs[0].run["project"] == "gan_lightning" and runs[0].run["job_type"] == "train"
    assert runs[1].run["tags"] == ["mlp", "ring8", "nonsaturating"]
    assert runs[0].run["run_id"] != runs[1].run["run_id"]


def test_a_run_is_named_by_what_makes_it_another_run_and_keeps_its_name_when_resumed_further():
    first = ["data=ring8", "model=mlp", "trainer.max_steps=300", "logger.project=p", "callbacks.keep_every_n_steps=50"]
    resumed = ["data=ring8", "model=mlp", "trainer.max_steps=600", "resume=auto", "verbose=true"]
    assert naming_overrides(first) == naming_overrides(resumed) == ["data=ring8", "model=mlp"]
    # In a sweep: the keys it varies, in the job's own values.
    job = ["data=ring8", "seed=3", "objective=minimax", "trainer.max_steps=600"]
    assert naming_overrides(job, {"seed", "objective"}) == ["seed=3", "objective=minimax"]


def test_history_holds_losses_d_outputs_gradients_learning_rates_images_and_histograms(sweep):
    run = WandbRun(sweep / "0")
    expected = {"loss/d", "loss/g", "d/real", "d/fake", "d/r_t", "grad_norm/d", "grad_norm/g", "lr/d", "lr/g", "samples",
                "d_outputs/real", "d_outputs/fake", "metrics/modes", "metrics/hq_fraction", "metrics/reverse_kl", "trainer/global_step"}  # fmt: skip
    assert expected <= run.history_keys
    losses = [row for row in run.history if "loss/d" in row]
    assert [row["trainer/global_step"] for row in losses] == list(
        range(10, 101, 10)
    )  # every 10 steps, on the trainer's axis
    assert all(row["grad_norm/d"] > 0 and row["lr/d"] == pytest.approx(2e-4) for row in losses)
    images = [row["samples"] for row in run.history if "samples" in row]
    assert len(images) == 2 and images[0]["_type"] == "images/separated" and images[0]["format"] == "png"
    histogram = next(row["d_outputs/real"] for row in run.history if "d_outputs/real" in row)
    assert histogram["_type"] == "histogram" and sum(histogram["values"]) == 64  # callbacks.num_samples real points


def test_an_augmented_image_run_shows_ds_health_and_adas_p_beside_fid_in_wandb(tmp_path):
    args = ["model=dcgan", "data=fashion_mnist", "data.subset=512", "augment=ada", "logger=wandb", "metrics=image",
            "metrics.every_n_steps=4", "metrics.num_samples=250", "metrics.final_num_samples=250",
            "metrics.real_num_samples=250", "metrics.kid_subset_size=100", "callbacks.d_health_every_n_steps=4",
            "trainer.log_every_n_steps=4", "trainer.max_steps=8", "callbacks.samples_every_n_steps=0"]  # fmt: skip
    run_in_process(args, tmp_path)
    history = WandbRun(tmp_path).history
    by_step = {}
    for row in history:
        by_step.setdefault(row.get("trainer/global_step"), set()).update(row)
    for step in (4, 8):
        assert {"metrics/fid", "d/r_t", "augment/p", "d/real_train", "d/real_heldout", "d/heldout_gap"} <= by_step[step]


def test_summary_keeps_the_final_values_and_the_best_with_their_protocols_and_config_the_choices(sweep):
    run = WandbRun(sweep / "1")
    modes, reverse_kl = (
        [(row["trainer/global_step"], row[key]) for row in run.history if key in row]
        for key in ("metrics/modes", "metrics/reverse_kl")
    )
    assert [step for step, _ in modes] == [50, 100]
    # The summary's values are the last ones, under the protocol beside them (the final one: the run completed).
    assert run.summary["metrics/modes"] == modes[-1][1] and run.summary["metrics/reverse_kl"] == reverse_kl[-1][1]
    summary = read_summary(sweep / "1")
    assert run.summary["metrics_protocol"] == summary["metrics_protocol"]
    # The best value of each metric, over the evaluations under one protocol, labelled with it and its step.
    best = run.summary["metrics_best"]
    periodic = best["protocol"]
    assert periodic == summary["metrics_protocol"]  # toy2d measures every evaluation alike: the final one counts too
    best_step, best_kl = min(reverse_kl, key=lambda point: (point[1], point[0]))
    assert best["reverse_kl"] == {"value": pytest.approx(best_kl), "step": best_step}
    assert best["modes"]["value"] == max(value for _, value in modes)
    # summary.json holds the same record (compare reads it there).
    assert summary["metrics_best"]["reverse_kl"] == {"value": pytest.approx(best_kl), "step": best_step}
    assert summary["metrics_best"]["protocol"] == periodic
    definitions = {d["name"]: d.get("summary") for d in run.metric_definitions if "name" in d}
    assert definitions["metrics/fid"] is None and definitions["metrics/modes"] is None  # no best over protocols
    assert run.config["choices"]["objective"] == "nonsaturating" and run.config["trainer"]["max_steps"] == 100


def test_checkpoints_are_uploaded_as_model_artifacts_when_asked(sweep):
    artifacts = WandbRun(sweep / "0").artifacts
    assert [a["type"] for a in artifacts] == ["model"]
    assert set(artifacts[0]["aliases"]) == {"latest", "step-100"}


def test_report_reads_a_multirun_from_local_files(sweep):
    result = __import__("subprocess").run(
        [__import__("sys").executable, "-m", "gan_lightning.report", f"dir={sweep}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    report = (sweep / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert len(rows) == 2 and "objective=minimax" in rows[0] and "completed" in rows[0]
    summary = json.loads((sweep / "1" / "summary.json").read_text())
    assert f"{summary['metrics']['reverse_kl']:.4g}" in rows[1]
    assert f"Measured on: {describe_machine(summary['machine'])} (2 run(s))." in report.splitlines()
    # Curves: 5 panels (losses, D outputs, 3 metrics) in 2 rows of 3; samples: 2 runs side by side.
    assert Image.open(sweep / "report" / "curves_0.png").size == (1000, 640)
    assert Image.open(sweep / "report" / "samples.png").size == (600, 340)
    assert "![last samples of every run](report/samples.png)" in report


WANDB_RUN_WITH_SPLIT_RECORDS = """
import sys, wandb
run = wandb.init(mode="offline", dir=sys.argv[1], project="cuts", settings=wandb.Settings(console="off"))
for step in range(200):
    # Rows of about 400 bytes cross a 32 KiB block now and then (FIRST, LAST); one of 80 KiB spans three (MIDDLE too).
    run.log({"loss": float(step), "note": "x" * (80_000 if step == 100 else 400)})
run.finish()
"""


def test_a_run_file_cut_at_any_chunk_reads_as_its_complete_records_and_names_where_the_torn_one_begins(tmp_path):
    """A kill can cut W&B's log anywhere: the reader keeps each record that was whole and flags the rest."""
    made = subprocess.run(
        [sys.executable, "-c", WANDB_RUN_WITH_SPLIT_RECORDS, str(tmp_path)], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr[-3000:]
    path = find_wandb_file(tmp_path / "wandb")
    data = path.read_bytes()
    whole = list(TransactionLog(path))
    starts, ends, middles = [], [], 0  # where each record's first chunk begins and its last chunk ends
    for chunk_type, payload, offset in _chunks(data, path):
        if chunk_type in (FULL, FIRST):
            starts.append(offset)
        if chunk_type in (FULL, LAST):
            ends.append(offset + 7 + len(payload))
        middles += chunk_type == MIDDLE
    assert len(starts) == len(ends) == len(whole) > 200 and middles >= 1
    split = [i for i in range(len(whole)) if starts[i] // 32768 != (ends[i] - 1) // 32768]
    assert split, "no record crosses a 32 KiB block: the test needs one"
    cuts = {starts[i] + d for i in [0, 1, len(whole) // 2, *split, len(whole) - 1] for d in (0, 3, 7, 10)}
    cuts |= {ends[i] - 1 for i in split} | {32768 * (1 + ends[split[0]] // 32768) - 3}
    for cut in sorted(cuts):
        (tmp_path / "cut.wandb").write_bytes(data[:cut])
        log = TransactionLog(tmp_path / "cut.wandb")
        kept = list(log)
        complete = sum(end <= cut for end in ends)
        assert kept == whole[:complete], cut
        torn = next((start for start, end in zip(starts, ends) if start < cut < end), None)
        assert log.torn_tail_at == torn, cut
    cut_run = WandbRun(tmp_path / "cut.wandb")
    assert cut_run.history == WandbRun(path).history[: len(cut_run.history)]

    corrupt = bytearray(data)
    corrupt[starts[len(whole) // 2] + 9] ^= 0xFF  # a byte inside a record in the middle: damage, not a kill
    (tmp_path / "corrupt.wandb").write_bytes(bytes(corrupt))
    with pytest.raises(WandbRecordError, match="checksum mismatch"):
        list(TransactionLog(tmp_path / "corrupt.wandb"))


# A W&B run of 100 steps logging every 10: what the tracker's faults are tried on.
TRACKED_RUN = ["data=ring8", "model=mlp", "logger=wandb", "trainer.max_steps=100", "trainer.log_every_n_steps=10",
               "callbacks.progress_every_n_steps=0"]  # fmt: skip


def test_an_unusable_wandb_folder_does_not_stop_training(run_dir):
    run_dir.mkdir(parents=True)
    (run_dir / "wandb").write_text("not a folder")
    summary = run_in_process(TRACKED_RUN, run_dir)
    assert summary["status"] == "completed" and summary["global_step"] == 100
    with open(run_dir / "csv" / "metrics.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f) if row["loss/d"]] == list(range(10, 101, 10))


def test_a_tracker_that_dies_mid_run_does_not_stop_training(run_dir, caplog):
    summary = run_in_process(
        [*TRACKED_RUN, "callbacks.extra=[{_target_: tests.helpers.faults.EndTrackerRun, at_step: 50}]"], run_dir
    )
    assert summary["status"] == "completed" and summary["global_step"] == 100
    assert "W&B stopped logging (UsageError" in caplog.text
    with open(run_dir / "csv" / "metrics.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f) if row["loss/d"]] == list(range(10, 101, 10))


def test_progress_lines_carry_the_key_numbers_in_a_non_interactive_log(tmp_path):
    result = run_command(["data=ring8", "model=mlp", "trainer.max_steps=100", "logger=none", "metrics=toy2d", "metrics.every_n_steps=50",
                  "callbacks.progress_every_n_steps=25", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)  # fmt: skip
    lines = {
        step: next(line for line in result.stderr.splitlines() if f"step {step}/100" in line)
        for step in (25, 50, 75, 100)
    }
    for fragment in ("loss/d ", "loss/g ", "d/real ", "d/fake ", "modes ", "reverse_kl ", "steps/s", "eta "):
        assert fragment in lines[100]
    # An evaluation's values on a later line say the step they were measured at; none before the first one.
    assert "modes" not in lines[25] and "at step" not in lines[50] and "| modes " in lines[50]
    assert "| at step 50: modes " in lines[75] and "at step" not in lines[100]
    assert "\r" not in result.stderr  # no redraws in a log file


def test_mean_and_standard_error_as_the_study_tables_print_them():
    from gan_lightning.results.statistics import mean_and_error

    assert mean_and_error([1.0, 2.0, 3.0], 2) == "2.00 ± 0.58"  # standard deviation 1 over √3 runs
    assert mean_and_error([4.0, None, float("nan")], 1) == "4.0"  # one finite value: no error to give
    assert mean_and_error([None], 1) == "–"


def test_a_run_prints_its_own_lines_and_what_dependencies_print_only_when_verbose(tmp_path):
    # W&B's banner and summary, Lightning's device lines and table of the networks: behind verbose=true.
    args = ["data=ring8", "model=mlp", "logger=wandb", "trainer.max_steps=100", "callbacks.progress_every_n_steps=50"]
    quiet = cli([*args, f"hydra.run.dir={tmp_path / 'quiet'}"], cwd=tmp_path, env={"WANDB_SILENT": None})
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    output = quiet.stdout + quiet.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert not [line for line in lines if "][gan_lightning][" not in line], output  # the project's lines alone
    assert sum("step 50/100" in line or "step 100/100" in line for line in lines) == 2 and "run directory:" in output
    loud = cli([*args, "verbose=true", f"hydra.run.dir={tmp_path / 'loud'}"], cwd=tmp_path, env={"WANDB_SILENT": None})
    output = loud.stdout + loud.stderr
    assert (
        loud.returncode == 0
        and "wandb: Run summary:" in output
        and "GPU available" in output
        and "Total params" in output
    )


FROZEN_SERVICE = """
import logging, os, signal, sys, time
import wandb
from gan_lightning.tracking.service import finish_run, wandb_service_processes
logging.basicConfig(level=logging.INFO, format="%(message)s")
run = wandb.init(mode="offline", dir=sys.argv[1], project="frozen", settings=wandb.Settings(silent=True))
run.log({"value": 1.0})
for pid in wandb_service_processes():
    os.kill(pid, signal.SIGSTOP)
started = time.monotonic()
closed = finish_run(run, timeout_s=2)
print(f"closed={closed} waited={time.monotonic() - started:.1f}", flush=True)
"""


def test_a_run_whose_wandb_service_stops_answering_ends_after_its_limit_with_its_folder_named(tmp_path):
    # What every W&B run of the project closes with (training, evaluate, compare): W&B's own finish waits for a
    # frozen service without limit, and so does the process's exit.
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", FROZEN_SERVICE, str(tmp_path)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "WANDB_SILENT": "true"})  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    closed, waited = (part.split("=")[1] for part in result.stdout.split())
    assert closed == "False" and 2 <= float(waited) < 2 + 5 + 3  # its limit, then the service's 5 s to shut down
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    assert (
        f"within 2 s (logger.finish_timeout_s); it ends without waiting: what W&B wrote is in {folder}" in result.stderr
    )
    assert "W&B's service did not shut down within 5 s; it was stopped" in result.stderr
    assert elapsed < 60, elapsed  # the exit did not wait for the stopped service either


def test_a_finished_run_is_on_disk_when_finishing_returns(tmp_path):
    import wandb

    from gan_lightning.tracking.service import finish_run

    run = wandb.init(mode="offline", dir=str(tmp_path), project="closed", settings=wandb.Settings(silent=True),
                     reinit="create_new")  # fmt: skip
    run.log({"value": 3.0})
    assert finish_run(run, timeout_s=60)
    written = WandbRun(tmp_path)  # read at once: the exit record and everything before it are there
    assert written.exit_code == 0 and written.metric("value") == [(0, 3.0)]

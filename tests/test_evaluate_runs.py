"""evaluate runs=: every kept checkpoint of a sweep scored, the results in tables, summaries and each run's W&B run."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from gan_lightning.runs.summary import read_summary
from gan_lightning.tracking.wandb_records import WandbRun
from tests.helpers.commands import Result, command, run_command

RUN = ["data=ring8", "model=mlp", "logger=wandb", "metrics=toy2d", "metrics.every_n_steps=50", "metrics.num_samples=500", "trainer.max_steps=150",
       "callbacks.checkpoint_every_n_steps=50", "callbacks.keep_every_n_steps=50", "callbacks.samples_every_n_steps=0",
       "callbacks.progress_every_n_steps=0"]  # fmt: skip


def evaluate(*args: str, cwd: Path) -> Result:
    return command("evaluate", args, cwd=cwd)


def test_a_sweeps_checkpoints_are_scored_once_into_tables_summaries_and_each_runs_wandb_run(tmp_path):
    sweep = tmp_path / "sweep"
    trained = run_command(["-m", *RUN, "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    before = {job: read_summary(sweep / job) for job in "01"}

    first = evaluate(f"runs={sweep}", "metrics.num_samples=500", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "6 checkpoints of 2 runs: 6 scored, 0 from the cache" in first.stdout
    # A line per checkpoint as it is scored, the run named by what sets it apart from the others.
    assert re.findall(r"\[\d/6\] (seed=\d step \d+):", first.stderr) == [
        f"seed={job} step {step}" for job in "01" for step in (50, 100, 150)
    ]
    with open(sweep / "evaluation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(Path(r["run"]).name, r["label"], int(r["step"])) for r in rows] == [
        (job, f"seed={job}", step) for job in "01" for step in (50, 100, 150)
    ]
    assert "| seed=1 | step_000100.ckpt | 100 |" in (sweep / "evaluation.md").read_text()
    protocols = [json.loads(r["protocol"]) for r in rows]
    assert [p["latent_seed"] for p in protocols] == [0, 0, 0, 1, 1, 1] and protocols[0]["samples"] == 500
    assert all(
        {**p, "latent_seed": 0} == protocols[0] for p in protocols
    )  # one protocol but for each run's own latents
    for job in "01":
        summary = read_summary(sweep / job)
        # The run's last checkpoint scores what training measured at that step: same samples, same protocol.
        last = next(r for r in rows if Path(r["run"]).name == job and r["step"] == "150")
        for name in ("modes", "hq_fraction", "reverse_kl", "balanced_hq_fraction"):
            assert float(last[name]) == float(before[job]["metrics"][name])  # summary.json writes inf as "inf"
        scored = {int(r["step"]): float(r["hq_fraction"]) for r in rows if Path(r["run"]).name == job}
        best_step = min(scored, key=lambda step: (-scored[step], step))
        assert summary["evaluation"]["metrics"]["hq_fraction"] == {"best": pytest.approx(scored[best_step]), "best_step": best_step,
                                                                  "last": pytest.approx(scored[150]), "last_step": 150}  # fmt: skip
        assert (
            summary["evaluation"]["protocol"] == {**protocols[0], "latent_seed": int(job)}
            and summary["evaluation"]["checkpoints"] == 3
        )
        assert {k: v for k, v in summary.items() if k != "evaluation"} == before[job]  # nothing else of the run changes
        # The run's own W&B run, continued: one run id over training and evaluation.
        segments = [WandbRun(folder) for folder in sorted((sweep / job / "wandb").glob("*run-*"))]
        assert len(segments) == 2 and len({s.run["run_id"] for s in segments}) == 1
        assert [row["evaluation/step"] for row in segments[-1].history] == [50, 100, 150]
        assert segments[-1].config["evaluation_protocol"] == summary["evaluation"]["protocol"]
    assert (
        "## Protocol 1" in (sweep / "evaluation.md").read_text()
        and "## Protocol 2" not in (sweep / "evaluation.md").read_text()
    )
    assert all(
        (sweep / f"evaluation_{name}.png").stat().st_size > 0
        for name in ("modes", "hq_fraction", "reverse_kl", "balanced_hq_fraction")
    )

    table = (sweep / "evaluation.csv").read_text()
    # Without metrics settings, the runs' own final protocol: the one just scored, all in the cache.
    second = evaluate(f"runs={sweep}", cwd=tmp_path)
    assert second.returncode == 0 and "6 checkpoints of 2 runs: 0 scored, 6 from the cache" in second.stdout
    assert (sweep / "evaluation.csv").read_text() == table
    assert all(len(list((sweep / job / "wandb").glob("*run-*"))) == 2 for job in "01")  # nothing new: no new segment
    # Another protocol is another cache key: scored again, in a table of its own.
    third = evaluate(f"runs={sweep / '0'}", "metrics.num_samples=400", f"out={tmp_path / 'other'}", cwd=tmp_path)
    assert third.returncode == 0 and "3 checkpoints of 1 runs: 3 scored, 0 from the cache" in third.stdout
    # The summary then reports the new protocol's scores alone, never a mixture of both protocols' values.
    with open(tmp_path / "other" / "evaluation.csv", newline="") as f:
        other = {int(r["step"]): float(r["hq_fraction"]) for r in csv.DictReader(f)}
    evaluation = read_summary(sweep / "0")["evaluation"]
    best_step = min(other, key=lambda step: (-other[step], step))
    assert evaluation["protocol"]["samples"] == 400 and evaluation["checkpoints"] == 3
    assert evaluation["metrics"]["hq_fraction"] == {
        "best": pytest.approx(other[best_step]),
        "best_step": best_step,
        "last": pytest.approx(other[150]),
        "last_step": 150,
    }


def test_evaluate_refuses_what_it_cannot_read_without_a_traceback(tmp_path):
    for args, message in [
        ([f"runs={tmp_path / 'missing'}"], f"runs={str(tmp_path / 'missing')!r}: no such directory."),
        (
            [f"runs={tmp_path}"],
            f"runs={str(tmp_path)!r}: neither a run directory (with checkpoints/) nor a sweep directory holding runs.",
        ),
        ([], "give ckpt=PATH (one checkpoint) or runs=DIR[,DIR...] (run or sweep directories), not both or neither."),
    ]:
        result = evaluate(*args, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_run_with_an_unreadable_summary_is_left_out_and_named_and_the_others_are_scored(tmp_path):
    sweep = tmp_path / "sweep"
    trained = run_command(["-m", *RUN, "logger=csv", "trainer.max_steps=100", "seed=0,1", f"hydra.sweep.dir={sweep}"],
                          cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    (sweep / "1" / "summary.json").write_text('{"status": "compl')  # cut short by a full disk
    result = evaluate(f"runs={sweep}", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"left out {sweep / '1' / 'summary.json'}: it cannot be read" in result.stderr
    assert "2 checkpoints of 1 runs: 2 scored, 0 from the cache" in result.stdout
    with open(sweep / "evaluation.csv", newline="") as f:
        assert [(Path(r["run"]).name, int(r["step"])) for r in csv.DictReader(f)] == [("0", 50), ("0", 100)]
    assert read_summary(sweep / "0")["evaluation"]["checkpoints"] == 2
    assert not (sweep / "1" / "evaluation.json").exists()

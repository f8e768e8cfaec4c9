"""The command line as users meet it: clear one-paragraph errors without tracebacks, and multiruns.

Through the command's ``main(argv)`` in this process; one multirun goes through the real ``python -m`` entry point."""

from __future__ import annotations

import json

from tests.conftest import cli
from tests.helpers.commands import run_command

TOY = ["data=ring8", "model=mlp", "logger=csv", "callbacks.progress_every_n_steps=0"]


def assert_user_error(result, *fragments):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output


def test_unknown_option_lists_the_choices_without_a_traceback(tmp_path):
    result = run_command(["objective=nope"], cwd=tmp_path)
    assert_user_error(
        result, "Could not find 'objective/nope'", "Available options in 'objective'", "minimax", "nonsaturating"
    )
    assert not (tmp_path / "outputs").exists()  # nothing was written


def test_wrong_type_is_reported_by_hydra_without_a_traceback(tmp_path):
    result = run_command(["trainer.max_steps=many"], cwd=tmp_path)
    assert_user_error(
        result, "Value 'many' of type 'str' could not be converted to Integer", "full_key: trainer.max_steps"
    )


def test_missing_data_is_one_paragraph_and_exit_code_2(tmp_path):
    result = run_command(
        ["data=fashion_mnist", "data.root=/nonexistent", "data.download=false", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert_user_error(
        result,
        "Fashion-MNIST was not found",
        "data.root: /nonexistent (does not exist)",
        "apt-get install dataset-fashion-mnist",
    )
    error_lines = [line for line in result.stderr.splitlines() if "not found" in line]
    assert len(error_lines) == 1  # the whole message is one paragraph
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "Fashion-MNIST was not found" in summary["error"]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_model_that_cannot_fit_the_data_is_refused_before_training(tmp_path):
    result = run_command(["model=dcgan", "data=ring8", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2
    assert_user_error(result, "model=dcgan needs image data", "shape (2,)")


def test_two_job_multirun_gives_each_job_its_directory_and_summary(tmp_path):
    sweep = tmp_path / "sweep"
    result = cli(
        ["-m", "objective=minimax,nonsaturating", *TOY, "trainer.max_steps=50", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}
    assert sorted(summaries) == ["0", "1"]
    assert [summaries[j]["overrides"][0] for j in ("0", "1")] == ["objective=minimax", "objective=nonsaturating"]
    assert all(s["status"] == "completed" and s["global_step"] == 50 for s in summaries.values())
    assert f"sweep {sweep}: 2 jobs: 2 completed" in result.stdout + result.stderr


def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_command(
        ["-m", "model=dcgan,mlp", "data=ring8", "logger=csv", "trainer.max_steps=30", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    statuses = {p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/summary.json")}
    assert statuses == {"0": "failed", "1": "completed"}
    assert f"sweep {sweep}: 2 jobs: 1 completed, 1 failed" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr

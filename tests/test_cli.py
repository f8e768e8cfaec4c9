"""The command line as users meet it: clear one-paragraph errors without tracebacks, and multiruns.

Through the command's ``main(argv)`` in this process; one multirun goes through the real ``python -m`` entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import cli
from tests.helpers.commands import run_command

TOY = ["data=ring8", "model=mlp", "logger=csv", "callbacks.progress_every_n_steps=0"]


def assert_user_error(result, *fragments):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output


# What Hydra would answer with its own lines and exit code 1 (or accept and ignore), answered as the project's errors.
REFUSED_COMMAND_LINES = {
    "unknown option": (
        ["objective=nope"],
        "objective=nope is not allowed: one of hinge, least_squares, minimax, nonsaturating, relativistic, wasserstein, wgan_gp.",
    ),
    "unknown option of a group with few": (
        ["trainer=gpu"],
        "trainer=gpu is not allowed: one of ddp, ddp_cpu, default.",
    ),
    "unknown key": (
        ["model.depth=3"],
        "model.depth=3: model (model=dcgan) has no setting 'depth'; its settings: latent_dim,",
    ),
    "unknown top-level key": (["seeds=3"], "seeds=3: the config has no setting 'seeds'; its settings: model, data,"),
    "wrong type": (["trainer.max_steps=many"], "trainer.max_steps='many' is not allowed: a whole number."),
    "a key the schema lacks, added with +": (
        ["+trainer.fast_dev_runs=true"],
        "+trainer.fast_dev_runs=true adds a setting nothing reads: trainer has no 'fast_dev_runs'",
    ),
    "a setting that exists, added with +": (
        ["+trainer.fast_dev_run=true"],
        "+trainer.fast_dev_run=true: trainer.fast_dev_run is a setting already, and + adds new ones only: write "
        "trainer.fast_dev_run=true (no +).",
    ),
    "a value with spaces, unquoted": (
        ["hydra.run.dir=/tmp/my", "runs"],
        "'runs' is not a key=value setting: a value with spaces is one argument only when quoted",
    ),
    "a sweep without -m": (["seed=0,1"], "seed=0,1 lists several values, which only a multirun runs: add -m"),
    "an empty interval": (
        ["-m", "hparams_search=ring8_optuna", "optimizer.d.lr=interval(1e-2,1e-4)"],
        "interval(0.01, 0.0001) is empty; allowed: interval(low, high) with low < high.",
    ),
    "a log interval from 0": (
        ["-m", "hparams_search=ring8_optuna", "optimizer.d.lr=tag(log,interval(0,1e-2))"],
        "a log scale needs a lower end above 0, not 0",
    ),
    "a search over a key the config lacks": (
        ["-m", "hparams_search=ring8_optuna", "model.depth=interval(1,3)"],
        "model.depth=interval(1,3): model (model=mlp) has no setting 'depth'",
    ),
    "a choice of the wrong type": (
        ["-m", "hparams_search=ring8_optuna", "trainer.d_steps=choice(a,b)"],
        "trainer.d_steps='choice(a,b)' is not allowed: a whole number.",
    ),
    "an unknown key after its group's option": (
        ["data=ring8", "model=mlp", "model.depth=3"],
        "model.depth=3: model (model=mlp) has no setting 'depth'; its settings: latent_dim,",
    ),
    "an unknown key of the data": (
        ["data.foo=1"],
        "data.foo=1: data (data=fashion_mnist) has no setting 'foo'; its settings: batch_size,",
    ),
    "an unknown key of the optimizers": (
        ["optimizer=sgd", "optimizer.foo=1"],
        "optimizer.foo=1: optimizer (optimizer=sgd) has no setting 'foo'; its settings: g, d.",
    ),
    "a key of another option of its group": (
        ["augment=none", "augment.policy=x"],
        "augment.policy=x: augment (augment=none) has no setting 'policy'; it has no settings.",
    ),
    "a DiffAugment policy of a transform it lacks": (
        ["augment=diffaug", "augment.policy=bogus"],
        "augment.policy=['bogus'] is not allowed: a list of color, translation, cutout.",
    ),
    "one transform as a word, not a list": (
        ["augment=diffaug", "augment.policy=color"],
        "augment.policy='color' is not allowed: a list, such as augment.policy=[color].",
    ),
    "a pruner's setting Optuna refuses": (
        [
            "-m",
            "hparams_search=ring8_optuna",
            "hydra/sweeper/pruner=successive_halving",
            "hydra.sweeper.pruner.reduction_factor=1",
        ],  # fmt: skip
        "hydra.sweeper.pruner: The value of `reduction_factor` is 1, but must be `reduction_factor >= 2`.",
    ),
    "a pruner by a name it does not have": (
        ["-m", "hparams_search=ring8_optuna", "hydra.sweeper.pruner=asha"],
        "hydra.sweeper.pruner='asha' is not allowed: one of none, median, successive_halving, hyperband.",
    ),
    "a pruner without a metric measured while trials train": (
        ["-m", "hparams_search=ring8_optuna", "hydra.sweeper.pruner=median", "metrics=none"],
        "hydra/sweeper/pruner=median decides on optimized_metric=reverse_kl as the trial trains, but metrics=none "
        "measures nothing",
    ),
    "a pruner in a study of two objectives": (
        [
            "-m",
            "hparams_search=ring8_optuna",
            "hydra.sweeper.pruner=median",
            "hydra.sweeper.direction=[minimize,minimize]",
            "optimized_metric=[reverse_kl,wall_time_s]",
        ],  # fmt: skip
        "Optuna prunes single-objective studies only, and this one has 2 directions",
    ),
    "a direction of its own": (
        ["-m", "hparams_search=ring8_optuna", "hydra.sweeper.direction=lower"],
        "hydra.sweeper.direction='lower' is not allowed: minimize, maximize, or a list of them",
    ),
    "a storage URL with no database behind it": (
        ["-m", "hparams_search=ring8_optuna", "hydra.sweeper.storage=postgresql://nobody@127.0.0.1:1/study"],
        "hydra.sweeper.storage=postgresql://nobody@127.0.0.1:1/study: the database does not answer",
    ),
    "a storage that is no URL": (
        ["-m", "hparams_search=ring8_optuna", "hydra.sweeper.storage=mystudy://here"],
        "hydra.sweeper.storage=mystudy://here is not a storage URL",
    ),
    "a search drawing an option its group lacks": (
        ["-m", "hparams_search=ring8_optuna", "objective=choice(hinge,hinges)"],
        "objective=hinges is not allowed: one of hinge, least_squares, minimax, nonsaturating, relativistic,",
    ),
    "a continuous space on a grid": (
        ["-m", "hparams_search=ring8_optuna", "hydra/sweeper/sampler=grid"],
        "hydra.sweeper.params.optimizer.g.lr: the grid sampler takes choice(...), range(...) or int(interval(...))",
    ),
    "a batch larger than the data set": (
        ["data=ring8", "model=mlp", "data.batch_size=200000"],
        "data.batch_size × trainer.d_steps = 200000 samples per training step is not allowed: the data set has "
        "100000 samples, so at most 100000.",
    ),
    "one job of a parallel sweep with a batch larger than the data set": (
        ["-m", "hydra/launcher=parallel", "data=ring8", "model=mlp", "data.batch_size=100,200000"],
        "the data set has 100000 samples, so at most 100000. (in the sweep's job data.batch_size=200000)",
    ),
    "one job of a sweep over config groups that cannot model the data": (
        ["-m", "data=ring8", "model=mlp,dcgan"],
        "model=dcgan needs image data (channels × height × width), but the data's samples have shape (2,); use "
        "model=mlp for vector data such as ring8, grid25 or gaussian1d. (in the sweep's job model=dcgan)",
    ),
    "two of Hydra's modes": (
        ["-m", "data=ring8", "--cfg", "job"],
        "-m and --cfg cannot be given together: a command line runs one job, runs a sweep (-m), prints the composed",
    ),
    "a run directory that is a file": (
        ["hydra.run.dir=/etc/hostname"],
        "hydra.run.dir=/etc/hostname is an existing file, not a folder",
    ),
    "a run directory name too long": (
        [f"hydra.run.dir=/tmp/{'x' * 10000}"],
        "bytes long; a file system takes at most 255: choose a shorter hydra.run.dir.",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_COMMAND_LINES))
def test_a_command_line_hydra_would_refuse_is_one_message_and_exit_code_2(tmp_path, case):
    argv, message = REFUSED_COMMAND_LINES[case]
    result = run_command(argv, cwd=tmp_path, defaults=False)
    assert result.returncode == 2, result.stderr[-3000:]
    assert_user_error(result, message)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")  # one message, one line
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_search_space_with_a_bad_key_in_a_preset_is_refused():
    from gan_lightning import overrides

    cfg = overrides.compose(["hparams_search=ring8_optuna"], with_hydra=True)
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.sweeper.params["model.depth"] = "interval(1, 3)"
    with pytest.raises(overrides.UserError, match="model.depth is not a setting of the config"):
        overrides.check_search_space(cfg, [])
    del cfg.hydra.sweeper.params["model.depth"]
    cfg.hydra.sweeper.params["optimizer.g.lr"] = "tag(log, interval(0, 1e-2))"
    with pytest.raises(overrides.UserError, match="a log scale needs a lower end above 0"):
        overrides.check_search_space(cfg, [])
    cfg.hydra.sweeper.params["optimizer.g.lr"] = "tag(log, interval(1e-4, 1e-3))"
    cfg.hydra.sweeper.params["trainer.d_steps"] = "choice(one, two)"
    with pytest.raises(overrides.UserError, match="trainer.d_steps takes int values, not 'one', 'two'"):
        overrides.check_search_space(cfg, [])
    # null among the values of an optional whole number (data.subset: N images, or null for all) is one of its values,
    # whatever the value the command line set.
    cfg = overrides.compose(["experiment=limited_data", "data.subset=1000"], with_hydra=True)
    assert cfg.hydra.sweeper.params["data.subset"] == "1000,5000,null"
    overrides.check_search_space(cfg, [])


def test_flags_may_follow_the_overrides_as_people_type_them(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_command([*TOY, "trainer.max_steps=5", "-m", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.glob("*/summary.json") for p in [p.parent]) == ["0", "1"]


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
    # Job 0's folder holds no image: a fault found when its run starts, as the settings alone look right.
    empty, images = tmp_path / "empty", tmp_path / "images"
    empty.mkdir()
    images.mkdir()
    for i in range(8):
        Image.fromarray(np.full((8, 8, 3), 30 * i, dtype=np.uint8)).save(images / f"{i}.png")
    sweep = tmp_path / "sweep"
    result = run_command(
        [
            "-m",
            f"data.path={empty},{images}",
            "data=image_folder",
            "data.image_size=8",
            "data.batch_size=4",
            "data.num_workers=0",
            "model=mlp",
            "trainer.max_steps=3",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    statuses = {p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/summary.json")}
    assert statuses == {"0": "failed", "1": "completed"}
    assert f"sweep {sweep}: 2 jobs: 1 completed, 1 failed" in result.stdout + result.stderr
    assert "holds no image files" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr

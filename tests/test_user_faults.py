"""Faults the user can fix end in one message and exit code 2, never a traceback, in every command.

Full and read-only disks are real: a small tmpfs mounted for the test (the tests run as root, as CI does).
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import torch

from gan_lightning.checkpoints.resume import load_safely
from gan_lightning.data.idx import DataFinder
from gan_lightning.runs.summary import read_summary
from tests.conftest import REPO
from tests.helpers.commands import Result, command, run_command
from tests.test_history import checkpoint_step, file_hashes, start, wait_for

TOY = ["data=ring8", "model=mlp", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def assert_user_error(result: Result, *phrases: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for phrase in phrases:
        assert phrase in output, output[-3000:]


def fashion_mnist_copy(folder: Path) -> Path:
    source = DataFinder("fashion_mnist", None).find("train")
    assert source is not None, "Fashion-MNIST is installed by `make data` (Debian's dataset-fashion-mnist)"
    folder.mkdir(parents=True)
    for path in source.glob("*-ubyte*"):
        shutil.copy(path, folder / path.name)
    return folder


def test_a_truncated_data_file_is_named_with_how_to_get_a_good_copy_and_the_run_is_untouched(tmp_path):
    data = fashion_mnist_copy(tmp_path / "data")
    run_dir = tmp_path / "run"
    args = [
        "data=fashion_mnist",
        f"data.root={data}",
        "model=mlp",
        "callbacks.progress_every_n_steps=0",
        f"hydra.run.dir={run_dir}",
    ]
    assert run_command([*args, "trainer.max_steps=2"], cwd=tmp_path).returncode == 0
    images = next(data.glob("train-images*"))
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    before = file_hashes(run_dir)
    result = run_command([*args, "trainer.max_steps=4"], cwd=tmp_path)
    assert_user_error(
        result, f"{images} is damaged", "get a good copy", "python -m gan_lightning.data dataset=fashion_mnist"
    )
    assert file_hashes(run_dir) == before


def test_a_data_file_shorter_than_its_header_says_is_refused(tmp_path):
    data = fashion_mnist_copy(tmp_path / "data")
    labels = next(data.glob("train-labels*"))
    with gzip.open(labels, "rb") as f:
        raw = f.read()
    with gzip.open(labels, "wb") as f:
        f.write(raw[:-100])  # a valid gzip stream of a cut-off file
    result = run_command(
        [
            "data=fashion_mnist",
            f"data.root={data}",
            "model=mlp",
            "trainer.max_steps=2",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
    )
    assert_user_error(
        result, f"{labels} is damaged: its header announces 60000 values of shape (60000,), it holds 59900"
    )


@pytest.mark.slow
def test_a_full_disk_ends_the_run_with_a_message_the_last_checkpoint_intact_and_resume_works(tmp_path):
    with tmpfs(tmp_path / "disk", "40m") as disk:
        run_dir = disk / "run"
        args = [
            *TOY,
            "trainer.log_every_n_steps=10",
            "callbacks.checkpoint_every_n_steps=100",
            "trainer.max_steps=3000",
            f"hydra.run.dir={run_dir}",
        ]
        process = start(args, tmp_path)
        wait_for(lambda: checkpoint_step(run_dir) > 0, process)
        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)  # until the disk is full
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, stderr[-3000:]
        assert "Traceback" not in stderr and "no space left on the device" in stderr, stderr[-3000:]
        kept = load_safely(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]["steps_done"]
        assert 0 < kept < 3000
        filler.unlink()
        resumed = run_command(args, cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"at step {kept}" in resumed.stderr
        assert read_summary(run_dir)["global_step"] == 3000


def test_a_read_only_run_directory_is_one_message(tmp_path):
    with tmpfs(tmp_path / "disk", "20m") as disk:
        run_dir = disk / "run"
        run_dir.mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = run_command([*TOY, "trainer.max_steps=5", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
        assert_user_error(
            result,
            f"hydra.run.dir={run_dir}: {run_dir} is on a read-only file system: choose a hydra.run.dir on a writable one.",
        )


def test_the_other_commands_answer_bad_input_with_one_message(tmp_path):
    good = tmp_path / "good"
    assert (
        run_command([*TOY, "trainer.max_steps=20", "logger=none", f"hydra.run.dir={good}"], cwd=tmp_path).returncode
        == 0
    )
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes((good / "checkpoints" / "last.ckpt").read_bytes()[:2000])

    assert_user_error(command("evaluate", [f"ckpt={damaged}"], cwd=REPO), f"{damaged} is not a readable checkpoint")
    assert_user_error(command("sample", [f"ckpt={tmp_path / 'missing.ckpt'}"], cwd=REPO), "no such checkpoint file")
    assert_user_error(
        command("sample", [f"ckpt={good / 'checkpoints' / 'last.ckpt'}", "n=zero"], cwd=REPO),
        "n='zero' is not allowed: a whole number of at least 1",
    )
    assert_user_error(command("report", [f"dir={tmp_path / 'nothing'}"], cwd=REPO), "is not a directory")
    (tmp_path / "empty").mkdir()
    assert_user_error(command("report", [f"dir={tmp_path / 'empty'}"], cwd=REPO), "holds no readable run")
    assert_user_error(command("extractor", ["data=nonexistent"], cwd=REPO), "nonexistent")
    assert_user_error(command("bench", ["cases=nonexistent"], cwd=REPO), "cases='nonexistent' is not allowed")
    assert_user_error(
        command("bench", ["rounds=-1"], cwd=REPO), "rounds='-1' is not allowed: a whole number of at least 1"
    )
    assert_user_error(command("data", ["dataset=nonexistent"], cwd=REPO), "dataset='nonexistent' is not allowed")
    assert_user_error(
        command("data", ["fashion_mnist"], cwd=REPO), "unknown argument 'fashion_mnist'; allowed: dataset=, root="
    )
    assert_user_error(command("sample", ["n=3"], cwd=REPO), "ckpt= is required")
    # The networks come from the checkpoint: settings that change them are refused, not a load_state_dict traceback.
    last = good / "checkpoints" / "last.ckpt"
    assert_user_error(
        command("evaluate", [f"ckpt={last}", "model.latent_dim=7"], cwd=REPO),
        "the checkpoint's networks do not fit these settings (size mismatch for generator.",
        "so leave out model.latent_dim=7.",
    )
    assert_user_error(
        command("evaluate", [f"ckpt={last}", "model.g_hidden=[8]"], cwd=REPO), "so leave out model.g_hidden=[8]."
    )
    assert_user_error(
        command("evaluate", [f"ckpt={last}", "model=dcgan"], cwd=REPO),
        "model=dcgan: the networks come from the checkpoint, which holds model=mlp; leave out model=dcgan.",
    )
    assert_user_error(
        command("evaluate", [f"ckpt={last}", "data=grid25"], cwd=REPO),
        "data=grid25: the data they were trained on come from the checkpoint, which holds data=ring8",
    )
    # A run that kept only last.ckpt is one point against the step: evaluate says how to keep more.
    one = command("evaluate", [f"runs={good}", "metrics.num_samples=200"], cwd=REPO)
    assert one.returncode == 0, one.stderr[-3000:]
    assert f"{good}: one checkpoint (last.ckpt), so one point against the step" in one.stderr
    assert "callbacks.keep_every_n_steps=N" in one.stderr

    # A sweep with one unreadable summary: the report leaves that run out, names it, and reports the rest.
    sweep = tmp_path / "sweep"
    shutil.copytree(good, sweep / "0")
    shutil.copytree(good, sweep / "1")
    (sweep / "1" / "summary.json").write_text("{not json")
    report = command("report", [f"dir={sweep}"], cwd=REPO)
    assert report.returncode == 0, report.stderr[-3000:]
    assert f"left out {sweep / '1' / 'summary.json'}" in report.stderr
    text = (sweep / "report.md").read_text()
    assert "1 run(s): 1 completed." in text and "### 0:" in text and "### 1:" not in text

    with tmpfs(tmp_path / "disk", "5m") as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        out = disk / "samples.png"
        result = command("sample", [f"ckpt={good / 'checkpoints' / 'last.ckpt'}", f"out={out}"], cwd=REPO)
        assert_user_error(result, "the file system is read-only")


def test_a_data_set_that_cannot_be_had_offline_is_one_message(tmp_path):
    # No network: every download is refused at once (a proxy on a closed port), as on a machine without internet.
    offline = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "GAN_LIGHTNING_DATA": None,
               "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    result = command("data", ["dataset=mnist", f"root={tmp_path / 'mnist'}"], cwd=tmp_path, env=offline)
    assert_user_error(result, "MNIST was not found: looked for train-images-idx3-ubyte(.gz)", "the download failed")
    assert "None" not in result.stderr
    result = command("data", ["dataset=mnist"], cwd=tmp_path, env=offline)
    assert_user_error(result, "MNIST was not found", "data.root (not set)", "download cache")
    assert "Debian package" not in result.stderr  # MNIST has none
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    assert_user_error(
        command("data", ["dataset=mnist", f"root={a_file}"], cwd=tmp_path, env=offline),
        f"root={str(a_file)!r} is a file: give the folder that holds (or is to hold) the data set's files.",
    )


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="needs a machine without a CUDA GPU, where CUDA graphs are refused"
)
def test_a_setting_refused_when_the_run_starts_leaves_no_run_directory(tmp_path):
    # CUDA graphs need a GPU: a fact of the machine, found when the run starts (after Hydra made its directory).
    run_dir = tmp_path / "outputs" / "run"
    result = run_command(
        ["data=ring8", "model=mlp", "trainer.cuda_graph=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert_user_error(result, "trainer.cuda_graph=True is not allowed")
    assert not run_dir.exists()

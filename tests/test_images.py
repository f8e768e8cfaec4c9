"""Image data beyond MNIST: a user's folder (with a corrupt file), CIFAR-10 batches, and the ResNet GAN."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_lightning.config import to_config
from gan_lightning.data.images import decode, read_cifar_batch
from gan_lightning.errors import UserError
from gan_lightning.files import cache_root
from tests.helpers.commands import run_command
from tests.helpers.hydra import compose_config, run_in_process
from tests.test_objectives import ALL

QUIET = ["logger=none", "callbacks.progress_every_n_steps=0", "callbacks.num_samples=4"]


@pytest.fixture
def image_folder(tmp_path):
    """Two classes of generated pictures in PNG, JPEG and WebP, of assorted sizes, plus one corrupt file."""
    rng = np.random.default_rng(0)
    for label, colour in (("circles", (250, 40, 40)), ("squares", (40, 40, 250))):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i, (suffix, size) in enumerate([(".png", (80, 60)), (".jpg", (64, 96)), (".webp", (50, 50))] * 4):
            array = (rng.random((size[1], size[0], 3)) * 60).astype(np.uint8) + np.array(colour, dtype=np.uint8) // 2
            Image.fromarray(array).save(tmp_path / "images" / label / f"{i}{suffix}")
    (tmp_path / "images" / "squares" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return tmp_path / "images"


def test_decoding_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    array = np.zeros((40, 80, 3), dtype=np.uint8)
    array[:, 20:60] = 255  # a white band in the middle 40 columns
    Image.fromarray(array).save(tmp_path / "wide.png")
    image = decode(tmp_path / "wide.png", 32, 3)
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert image.float().mean() > 240  # the crop kept the centre band
    assert decode(tmp_path / "wide.png", 16, 1).shape == (1, 16, 16)


def test_folder_scan_skips_the_corrupt_file_and_labels_class_folders(image_folder, caplog):
    data = to_config(compose_config(["model=mlp", "data=image_folder", f"data.path={image_folder}"])).data
    files, labels = data.scan()
    assert len(files) == 24 and sorted(set(labels)) == [0, 1] and labels.count(1) == 12
    assert "skipped 1 unreadable image file(s) of 25" in caplog.text
    strict = to_config(
        compose_config(["model=mlp", "data=image_folder", f"data.path={image_folder}", "data.strict=true"])
    ).data
    with pytest.raises(UserError, match="1 unreadable image file.*broken.png"):
        strict.scan()


@pytest.mark.parametrize("size,model", [(32, "resnet"), (64, "resnet"), (32, "dcgan")])
def test_an_image_folder_trains(tmp_path, image_folder, size, model):
    summary = run_in_process(
        [
            "data=image_folder",
            f"data.path={image_folder}",
            f"data.image_size={size}",
            "data.batch_size=8",
            "data.num_workers=1",
            f"model={model}",
            "model.g_width=16",
            "model.d_width=16",
            "trainer.max_steps=3",
            "callbacks.samples_size=0",
            *QUIET,
        ],  # fmt: skip
        tmp_path / "run",
    )
    assert summary["status"] == "completed" and summary["global_step"] == 3
    # 4 images in a 2×2 grid with 2-pixel padding, as generated (callbacks.samples_size=0).
    assert Image.open(tmp_path / "run" / "samples" / "last.png").size == (2 * (size + 2) + 2, 2 * (size + 2) + 2)


FOLDER_RUN = ["data=image_folder", "data.image_size=16", "data.num_workers=0", "model=mlp", "trainer.max_steps=2"]


def test_metrics_auto_on_a_folder_too_small_for_a_domain_extractor_measures_nothing_and_says_why(
    tmp_path, image_folder
):
    # 25 image files (one unreadable) in 2 classes: a classifier of 4 epochs of 256-image batches cannot be trained on them.
    result = run_command([*FOLDER_RUN, f"data.path={image_folder}", "data.batch_size=8", "metrics=auto"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "metrics=auto measures no image metrics" in result.stderr
    assert "has 25 image files, and a domain feature extractor trains on at least 1024" in result.stderr
    assert "metrics.features=inception" in result.stderr
    assert not (Path(cache_root()) / "extractors" / f"domain-{folder_cache_key(image_folder)}-v1.pt").exists()

    explicit = run_command([*FOLDER_RUN, f"data.path={image_folder}", "metrics=image"], cwd=tmp_path)
    assert explicit.returncode == 2 and "Traceback" not in explicit.stderr, explicit.stderr[-3000:]
    assert "error: metrics.features=domain cannot be used: data.path=" in explicit.stderr


def test_a_folder_of_one_class_has_no_domain_extractor(tmp_path, image_folder):
    one_class = tmp_path / "one"
    (image_folder / "squares").rename(one_class)
    result = run_command([*FOLDER_RUN, f"data.path={one_class}", "metrics=image"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "has 0 class sub-folder(s), and a domain feature extractor is a classifier of at least 2 classes" in (
        result.stderr
    )


def test_a_batch_larger_than_the_folder_is_one_message(tmp_path, image_folder):
    result = run_command(
        [*FOLDER_RUN, f"data.path={image_folder}", "data.batch_size=16", "trainer.d_steps=2"], cwd=tmp_path
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (
        "data.batch_size × trainer.d_steps = 32 samples per training step is not allowed: the data set has "
        "24 samples, so at most 24." in result.stderr.splitlines()[-1]
    )


def folder_cache_key(folder) -> str:
    return to_config(
        compose_config(["model=mlp", "data=image_folder", f"data.path={folder}", "data.image_size=16"])
    ).data.cache_key


def test_an_empty_folder_is_a_startup_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(["data=image_folder", f"data.path={tmp_path / 'empty'}", "model=mlp", *QUIET], tmp_path / "run")
    assert exit_info.value.code == 2
    from gan_lightning.runs.summary import read_summary

    assert "holds no image files" in read_summary(tmp_path / "run")["error"]


def test_a_missing_folder_setting_is_named(tmp_path, caplog):
    with pytest.raises(SystemExit):
        run_in_process(["data=image_folder", "model=mlp", *QUIET], tmp_path / "run")
    assert "data.path has no value and needs one: set it on the command line (data.path=...)" in caplog.text


@pytest.mark.parametrize("objective", ALL)
def test_resnet_trains_with_every_objective(tmp_path, image_folder, objective):
    summary = run_in_process(
        [
            "data=image_folder",
            f"data.path={image_folder}",
            "data.image_size=32",
            "data.batch_size=8",
            "data.num_workers=0",
            "model=resnet",
            "model.g_width=16",
            "model.d_width=16",
            f"objective={objective}",
            "trainer.max_steps=2",
            *QUIET,
        ],  # fmt: skip
        tmp_path,
    )
    assert summary["status"] == "completed"


def write_cifar_batch(path, images, labels, extra=None):
    batch = {b"data": images.reshape(len(images), -1), b"labels": [int(v) for v in labels], b"batch_label": b"test"}
    if extra is not None:
        batch[b"extra"] = extra
    path.write_bytes(pickle.dumps(batch))


def test_cifar10_batches_are_read_into_one_tensor(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, rng.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 10))
    data = to_config(compose_config(["model=mlp", "data=cifar10", f"data.root={tmp_path}", "data.download=false"])).data
    images, labels = data.labelled_images("train")
    assert images.shape == (50, 3, 32, 32) and images.dtype == torch.uint8 and labels.shape == (50,)
    first, _ = read_cifar_batch(folder / "data_batch_1")
    assert torch.equal(images[:10], torch.from_numpy(first))
    x = data.load(seed=0)
    assert x.shape == (50, 3, 32, 32) and x.min() >= -1 and x.max() <= 1


class RunsCode:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_cifar_batch_carrying_other_objects_is_refused(tmp_path):
    write_cifar_batch(tmp_path / "data_batch_1", np.zeros((2, 3, 32, 32), np.uint8), [0, 1], extra=RunsCode())
    with pytest.raises(UserError, match="builtins.print is not allowed in a CIFAR-10 batch"):
        read_cifar_batch(tmp_path / "data_batch_1")


def test_missing_cifar10_names_the_places_and_the_offline_route(tmp_path):
    data = to_config(compose_config(["model=mlp", "data=cifar10", f"data.root={tmp_path}", "data.download=false"])).data
    with pytest.raises(UserError, match="CIFAR-10 was not found in .*data.download=false.*data.root"):
        data.prepare()

"""Data sets: the toy mixtures' geometry, the IDX reader, the look-up order and batches drawn by index."""

from __future__ import annotations

import gzip
import itertools
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_lightning.config import to_config
from gan_lightning.data.batches import TensorBatches
from gan_lightning.data.idx import DataFinder, read_idx
from gan_lightning.errors import UserError
from tests.helpers.hydra import compose_config

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def data_config(*overrides):
    return to_config(compose_config(["model=mlp", *overrides])).data


def test_ring8_has_eight_modes_on_the_unit_circle_and_tight_samples():
    data = data_config("data=ring8")
    centers = data.centers
    assert centers.shape == (8, 2)
    assert torch.allclose(centers.norm(dim=1), torch.ones(8), atol=1e-6)
    angles = sorted(math.atan2(y, x) % (2 * math.pi) for x, y in centers.tolist())
    assert all(abs(b - a - math.pi / 4) < 1e-6 for a, b in zip(angles, angles[1:]))
    x = data.load(seed=0)
    assert x.shape == (100_000, 2)
    nearest = torch.cdist(x, centers).min(dim=1)
    assert nearest.values.max() < 6 * 0.01  # std 0.01: nothing beyond 6σ in 10^5 draws
    share = torch.bincount(nearest.indices, minlength=8).float() / len(x)
    assert (share - 1 / 8).abs().max() < 0.01
    assert abs((x - centers[nearest.indices]).std().item() - 0.01) < 5e-4


def test_a_scatter_plot_is_headed_by_its_step(tmp_path):
    from PIL import Image

    data = data_config("data=ring8")
    points = data.load(seed=0)[:500]
    data.save_samples(points, tmp_path / "plain.png")
    data.save_samples(points, tmp_path / "titled.png", title="step 500")
    plain, titled = (
        np.asarray(Image.open(tmp_path / f"{name}.png").convert("L"), dtype=float) for name in ("plain", "titled")
    )
    assert plain.shape == titled.shape

    def top_frame(image: np.ndarray) -> int:  # the first row mostly dark: the axes' top edge
        return int(np.argmax((image < 128).sum(axis=1) > image.shape[1] // 2))

    # The title takes the band above the axes, which move down to make room; the plain plot has nothing there.
    assert top_frame(titled) >= top_frame(plain) + 8
    assert (titled[: top_frame(titled) - 2] < 128).sum() > 20 and (plain[: top_frame(plain) - 2] < 128).sum() == 0


def test_grid25_modes_are_the_5x5_grid_of_even_numbers():
    data = data_config("data=grid25")
    assert sorted(map(tuple, data.centers.tolist())) == sorted(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    x = data.load(seed=1)
    assert torch.cdist(x, data.centers).min(dim=1).values.max() < 6 * 0.05


def test_toy_data_is_seeded():
    data = data_config("data=ring8")
    assert torch.equal(data.load(seed=3), data.load(seed=3))
    assert not torch.equal(data.load(seed=3), data.load(seed=4))


def test_gaussian1d_has_the_configured_moments():
    data = data_config("data=gaussian1d", "data.mean=-1.5", "data.std=0.25")
    x = data.load(seed=0)
    assert x.shape == (100_000, 1)
    assert abs(x.mean().item() + 1.5) < 0.005 and abs(x.std().item() - 0.25) < 0.005


def write_idx(path: Path, array: torch.Tensor) -> None:
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.numpy().tobytes())


def make_idx_folder(folder: Path, n: int = 10) -> torch.Tensor:
    folder.mkdir(parents=True, exist_ok=True)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", torch.arange(n, dtype=torch.uint8) % 10)
    return images


def test_idx_reader_round_trips_and_images_are_scaled(tmp_path):
    images = make_idx_folder(tmp_path / "fm")
    assert torch.equal(read_idx(tmp_path / "fm" / "train-images-idx3-ubyte.gz", "fashion_mnist"), images)
    data = data_config(f"data.root={tmp_path / 'fm'}")
    x = data.load(seed=0)
    assert x.shape == (10, 1, 28, 28)
    assert torch.allclose(x, images.unsqueeze(1).float() / 127.5 - 1)
    unit = data_config(f"data.root={tmp_path / 'fm'}", "data.scale=unit").load(seed=0)
    assert unit.min() >= 0 and unit.max() <= 1 and torch.allclose(unit, (x + 1) / 2)


def test_idx_reader_refuses_other_files(tmp_path):
    bad = tmp_path / "x.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"PK\x03\x04 not idx")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(bad, "fashion_mnist")


def test_torchvision_layout_is_found_under_the_environment_variable(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "FashionMNIST" / "raw")
    monkeypatch.setenv("GAN_LIGHTNING_DATA", str(tmp_path))
    assert DataFinder("fashion_mnist", None).find("train") == tmp_path / "FashionMNIST" / "raw"


def test_explicit_root_comes_before_the_environment_variable(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "a")
    make_idx_folder(tmp_path / "b")
    monkeypatch.setenv("GAN_LIGHTNING_DATA", str(tmp_path / "b"))
    assert DataFinder("fashion_mnist", str(tmp_path / "a")).find("train") == tmp_path / "a"


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist package (installed by .ci/run)"
)
def test_real_fashion_mnist_from_debian_package(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_LIGHTNING_DATA", raising=False)
    started = time.perf_counter()
    data = data_config("data.limit=1000")
    x = data.load(seed=0)
    _, labels = data.load_labelled(seed=0)
    assert x.shape == (1000, 1, 28, 28) and x.min() == -1 and x.max() == 1
    assert labels.min() == 0 and labels.max() == 9
    full = read_idx(DEBIAN_FASHION / "train-images-idx3-ubyte.gz", "fashion_mnist")
    assert full.shape == (60000, 28, 28)
    assert time.perf_counter() - started < 5


def test_missing_data_names_every_place_tried_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LIGHTNING_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = data_config("data=mnist", "data.download=false")
    with pytest.raises(UserError) as info:
        data.load(seed=0)
    message = str(info.value)
    assert "MNIST was not found" in message
    assert "data.root (not set)" in message
    assert f"$GAN_LIGHTNING_DATA: {tmp_path / 'empty'} (does not exist)" in message
    assert f"download cache: {tmp_path / 'cache' / 'gan_lightning' / 'mnist'}" in message
    assert "downloading is off (data.download=false)" in message
    assert "python -m gan_lightning.data dataset=mnist" in message


def test_download_without_network_gives_up_fast_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LIGHTNING_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(
        "gan_lightning.data.idx.SOURCES",
        {
            "mnist": __import__("gan_lightning.data.idx", fromlist=["Source"]).Source(
                "MNIST", ("http://127.0.0.1:9/",), ("mnist",)
            )
        },
    )  # a closed local port: refused at once, as offline hosts do
    data = data_config("data=mnist", "data.download=true")
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"the download failed \(http://127.0.0.1:9/train-images-idx3-ubyte.gz"):
        data.load(seed=0)
    assert time.perf_counter() - started < 15
    # Nothing half-written is left under a final name.
    assert not (tmp_path / "cache" / "gan_lightning" / "mnist").exists()


def test_batches_cover_each_epoch_once_and_split_disjointly_across_ranks():
    data = torch.arange(1000).unsqueeze(1)
    ranks = [TensorBatches(data, batch_size=32, seed=7, rank=r, world_size=2) for r in range(2)]
    seen = [torch.cat(list(b)).flatten() for b in ranks]
    assert len(ranks[0]) == 1000 // 64 and all(len(s) == 15 * 32 for s in seen)
    assert not set(seen[0].tolist()) & set(seen[1].tolist())
    assert len(set(seen[0].tolist())) == len(seen[0])  # no repeats within an epoch
    second_epoch = torch.cat(list(ranks[0])).flatten()
    assert not torch.equal(second_epoch, seen[0])  # a new permutation each epoch


def test_an_epoch_ends_with_its_last_batch_even_when_no_more_is_asked_for():
    data = torch.arange(40).unsqueeze(1)
    batches = TensorBatches(data, batch_size=10, seed=3)
    first = [b for _, b in zip(range(len(batches)), batches)]  # as Lightning takes a loader of known length
    second = list(batches)
    assert len(second) == 4  # a full epoch, not an empty one
    assert (
        sorted(torch.cat(first).flatten().tolist()) == sorted(torch.cat(second).flatten().tolist()) == list(range(40))
    )
    assert not torch.equal(torch.cat(first), torch.cat(second))  # the next epoch's permutation
    assert batches.state_dict() == {"epoch": 1, "position": 4}


def test_lightning_counts_one_epoch_per_pass_over_the_data(tmp_path):
    import pytorch_lightning as pl

    from tests.test_module import fit

    class EpochStarts(pl.Callback):
        def __init__(self):
            self.started = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.started.append((trainer.current_epoch, pl_module.steps_done))

    # ring8 with 320 samples and batches of 64: 5 steps per epoch.
    epochs = EpochStarts()
    fit(tmp_path, "data.num_samples=320", "data.batch_size=64", "trainer.max_steps=12", callbacks=[epochs])
    assert epochs.started == [(0, 0), (1, 5), (2, 10)]


def test_batches_resume_from_their_state_exactly():
    data = torch.arange(500).unsqueeze(1)
    straight = TensorBatches(data, batch_size=10, seed=3)
    reference = [b.clone() for b in itertools.islice(itertools.chain(straight, straight), 70)]
    first = TensorBatches(data, batch_size=10, seed=3)
    it = iter(first)
    head = [next(it) for _ in range(23)]
    resumed = TensorBatches(data, batch_size=10, seed=3)
    resumed.load_state_dict(first.state_dict())
    tail = list(itertools.islice(itertools.chain(resumed, resumed), 70 - 23))
    assert all(torch.equal(a, b) for a, b in zip(head + tail, reference))


def test_an_explicit_root_without_the_files_is_an_error_even_when_other_copies_exist(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "elsewhere")
    monkeypatch.setenv("GAN_LIGHTNING_DATA", str(tmp_path / "elsewhere"))
    data = data_config(f"data.root={tmp_path / 'typo'}", "data.download=false")
    with pytest.raises(UserError, match=f"data.root: {tmp_path / 'typo'} \\(does not exist\\)"):
        data.load(seed=0)

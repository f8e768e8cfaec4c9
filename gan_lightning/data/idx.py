"""MNIST-format image sets read from the standard IDX ``.gz`` files, found locally or downloaded once."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from omegaconf import MISSING

from gan_lightning.data.images import StoredImages
from gan_lightning.errors import UserError, require_choice
from gan_lightning.files import cache_root, download, download_error
from gan_lightning.lazy import torch

if TYPE_CHECKING:
    from torch import Tensor

ENV_VAR = "GAN_LIGHTNING_DATA"
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Source:
    title: str
    mirrors: Tuple[str, ...]
    folder_names: Tuple[str, ...]  # sub-folders tried under every root: ours, torchvision's
    debian_dir: Optional[str] = None
    debian_package: Optional[str] = None


SOURCES: Dict[str, Source] = {
    "fashion_mnist": Source(
        "Fashion-MNIST",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ("fashion_mnist", "fashion-mnist", "FashionMNIST/raw"),
        "/usr/share/datasets/fashion-mnist",
        "dataset-fashion-mnist",
    ),
    "mnist": Source(
        "MNIST",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        ("mnist", "MNIST/raw"),
    ),
}


def cache_dir(dataset: str) -> Path:
    return cache_root() / dataset


def good_copy(dataset: str) -> str:
    """How to replace a damaged file of ``dataset`` (it is replaced, not repaired)."""
    package = SOURCES[dataset].debian_package
    reinstall = f"reinstall Debian's package (apt-get install --reinstall {package}), or " if package else ""
    return (f"delete it and get a good copy: {reinstall}`python -m gan_lightning.data dataset={dataset}` where the "
            "network allows")  # fmt: skip


def read_idx(path: Path, dataset: str) -> Tensor:
    """An IDX file of ``dataset`` (optionally gzipped) as a uint8 tensor of the shape its header gives."""
    replace_it = good_copy(dataset)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise UserError(f"{path} is damaged (truncated or corrupt: {error}); {replace_it}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes (as MNIST-format data sets are); {replace_it}.")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    values = len(raw) - 4 - 4 * ndim
    if values != math.prod(shape):
        raise UserError(
            f"{path} is damaged: its header announces {math.prod(shape)} values of shape {tuple(shape)}, it holds {max(values, 0)}; {replace_it}."
        )
    return torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8).view(*shape)


def _file_in(folder: Path, stem: str) -> Optional[Path]:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


class DataFinder:
    """Looks for a data set's files in the documented order and remembers what it saw, for the error message."""

    def __init__(self, dataset: str, root: Optional[str]):
        self.dataset, self.source, self.root = dataset, SOURCES[dataset], root
        self.tried: List[str] = []

    def candidates(self) -> List[Tuple[str, Optional[Path]]]:
        # A folder the user names is the only one looked at: another copy found elsewhere never stands in for it.
        if self.root:
            return [("data.root", Path(self.root).expanduser())]
        env = os.environ.get(ENV_VAR)
        debian = self.source.debian_package
        return [
            ("data.root", None),
            (f"${ENV_VAR}", Path(env).expanduser() if env else None),
            *([(f"Debian package {debian}", Path(self.source.debian_dir))] if debian else []),
            ("download cache", cache_dir(self.dataset)),
        ]

    @property
    def download_dir(self) -> Path:
        return Path(self.root).expanduser() if self.root else cache_dir(self.dataset)

    def find(self, split: str) -> Optional[Path]:
        """The folder holding ``split``'s image and label files, or None."""
        for label, base in self.candidates():
            if base is None:
                self.tried.append(f"{label} (not set)")
                continue
            for folder in [base] + [base / name for name in self.source.folder_names]:
                if all(_file_in(folder, stem) for stem in SPLIT_FILES[split]):
                    return folder
            state = "" if base.is_dir() else " (a file, not a folder)" if base.exists() else " (does not exist)"
            self.tried.append(f"{label}: {base}{state}")
        return None

    def download(self) -> Path:
        """Fetch all four files into data.root or the cache; raise OSError when no mirror answers."""
        target = self.download_dir
        errors = []
        for stem in SPLIT_FILES["train"] + SPLIT_FILES["test"]:
            if (target / (stem + ".gz")).is_file():
                continue
            for mirror in self.source.mirrors:
                try:
                    download(mirror + stem + ".gz", target / (stem + ".gz"))  # the folder is made once a mirror answers
                    break
                except OSError as error:
                    errors.append(f"{mirror}{stem}.gz: {download_error(error)}")
            else:
                raise OSError("; ".join(errors))
        return target

    def not_found(self, split: str, download_note: str) -> UserError:
        stems = " and ".join(f"{s}(.gz)" for s in SPLIT_FILES[split])
        how = ["pass data.root=DIR for a folder holding the four IDX files", f"set ${ENV_VAR}=DIR"]
        if self.source.debian_package:
            how.insert(0, f"install Debian's package (apt-get install {self.source.debian_package})")
        how.append(f"download them with `python -m gan_lightning.data dataset={self.dataset}` where the network allows")
        return UserError(
            f"{self.source.title} was not found: looked for {stems} in {'; '.join(self.tried)}; {download_note}. "
            f"To get it: {', or '.join(how)}."
        )


@dataclass
class IdxImages(StoredImages, name="idx"):
    """MNIST-format grey-scale images (LeCun et al. 1998; Xiao et al. 2017), held in memory as one tensor."""

    dataset: str = MISSING  # fashion_mnist | mnist

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        return (1, 28, 28)

    @property
    def cache_key(self) -> str:
        return self.dataset

    def check(self) -> None:
        super().check()
        require_choice("data.dataset", self.dataset, SOURCES)

    def locate(self) -> Path:
        finder = DataFinder(self.dataset, self.root)
        folder = finder.find(self.split)
        if folder is not None:
            return folder
        if not self.download:
            raise finder.not_found(self.split, "downloading is off (data.download=false)")
        try:
            return finder.download()
        except OSError as error:
            raise finder.not_found(self.split, f"the download failed ({error})") from None

    def labelled_images(self, split: str) -> Tuple[Tensor, Tensor]:
        folder = self.locate() if split == self.split else replace(self, split=split).locate()
        image_stem, label_stem = SPLIT_FILES[split]
        images, labels = (read_idx(_file_in(folder, stem), self.dataset) for stem in (image_stem, label_stem))
        return images.unsqueeze(1), labels.long()

    @property
    def num_classes(self) -> int:
        return 10

"""Image data beyond MNIST: a user's folder of images, and CIFAR-10 from its python batches."""

from __future__ import annotations

import logging
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np
from omegaconf import MISSING

from gan_lightning.data.base import DataConfig
from gan_lightning.data.plots import save_image_grid
from gan_lightning.errors import UserError, invalid, require_choice, require_positive
from gan_lightning.files import cache_root, download, download_error
from gan_lightning.lazy import torch
from gan_lightning.registry import implementation

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from torch import Tensor

log = logging.getLogger("gan_lightning")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def scale_uint8(images: Tensor, scale: str) -> Tensor:
    """uint8 pixels as floats in [−1, 1] (``symmetric``) or [0, 1] (``unit``)."""
    x = images.float() / 255.0
    return x * 2 - 1 if scale == "symmetric" else x


@dataclass
class ImageData(DataConfig):
    """Settings shared by colour or grey-scale image sets."""

    scale: str = MISSING  # symmetric: pixels in [−1, 1]; unit: [0, 1]

    @property
    def value_range(self) -> Tuple[float, float]:
        return (-1.0, 1.0) if self.scale == "symmetric" else (0.0, 1.0)

    def check(self) -> None:
        super().check()
        require_choice("data.scale", self.scale, ("symmetric", "unit"))

    def save_samples(self, samples: Tensor, path: Path, labels: Optional[Tensor] = None, discriminator=None,
                     title: Optional[str] = None, size: int = 0) -> None:  # fmt: skip
        # With labels (one block per class, in order), each row of the grid is one class.
        row = int((labels == labels[0]).sum()) if labels is not None else None
        save_image_grid(samples, path, self.value_range, row, size)


@dataclass
class StoredImages(ImageData):
    """A labelled image set with train and test splits, read whole into memory as uint8 and scaled once."""

    root: Optional[str] = MISSING  # a folder with the set's files; tried first
    download: bool = MISSING  # download into the user cache when no local copy is found
    split: str = MISSING  # train | test
    limit: Optional[int] = MISSING  # use only the first N images (quick trials, tests)
    # Train on N images of the split drawn by subset_seed (a small data set); FID and KID still compare with the
    # whole split's statistics (metrics.real_split).
    subset: Optional[int] = MISSING
    subset_seed: int = MISSING

    def check(self) -> None:
        super().check()
        require_choice("data.split", self.split, ("train", "test"))
        if self.limit is not None:
            require_positive("data.limit", self.limit, "a positive number of images, or null for all")
        if self.subset is not None:
            require_positive("data.subset", self.subset, "a positive number of images, or null for the whole split")
            if self.limit is not None:
                raise invalid(
                    "data.limit", self.limit, "null with data.subset (both choose the training images: set one)"
                )

    def training_subset(self) -> Optional[dict]:
        """Which images a run with ``data.subset`` trains on, for its summary: how many, of which split, drawn by which
        seed (the same seed draws the same images on every machine)."""
        if self.subset is None:
            return None
        return {"images": self.subset, "split": self.split, "seed": self.subset_seed}

    def heldout_split(self) -> str:
        """The split a run does not train on, where D's outputs on unseen reals are measured."""
        return "test" if self.split == "train" else "train"

    def locate(self) -> Path:
        """The folder with the set's files: local copies first, then a download when allowed."""
        raise NotImplementedError

    def labelled_images(self, split: str) -> Tuple[Tensor, Tensor]:
        """(images N×C×H×W uint8, labels N int64) of a whole split."""
        raise NotImplementedError

    def prepare(self) -> None:
        self.locate()

    def load_labelled(self, seed: int) -> Tuple[Tensor, Tensor]:
        images, labels = self.labelled_images(self.split)
        if self.limit is not None:
            images, labels = images[: self.limit], labels[: self.limit]
        if self.subset is not None:
            if self.subset > len(images):
                raise invalid("data.subset", self.subset, f"at most the {len(images)} images of the {self.split} split")
            chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.subset_seed))
            index = chosen[: self.subset].sort().values
            images, labels = images[index], labels[index]
        return scale_uint8(images, self.scale), labels

    def heldout_images(self, n: int) -> Tuple[Tensor, Tensor]:
        """``n`` images of the split the run does not train on (scaled as training images are), with labels."""
        images, labels = self.labelled_images(self.heldout_split())
        index = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:n]
        return scale_uint8(images[index], self.scale), labels[index]


# ---------------------------------------------------------------- a folder of images


def decode(path: Path, size: int, channels: int) -> Tensor:
    """One image file, resized (shorter side to ``size``) and centre-cropped, as uint8 (C, size, size)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        width, height = image.size
        factor = size / min(width, height)
        image = image.resize((max(size, round(width * factor)), max(size, round(height * factor))), Image.BICUBIC)
        left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
        image = image.crop((left, top, left + size, top + size))
        array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).view(size, size, channels).permute(2, 0, 1)


def readable(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:
        return False


MIN_DOMAIN_IMAGES = 1024  # four batches of the domain classifier's 256 images per epoch


@dataclass
class ImageFolder(ImageData, name="image_folder"):
    """Any folder tree of images (PNG, JPEG, WebP); class sub-folders, when present, are the labels."""

    path: str = MISSING
    image_size: int = MISSING  # side after resizing the shorter side and centre-cropping
    channels: int = MISSING  # 1: grey-scale; 3: RGB
    strict: bool = MISSING  # true: an unreadable file is an error; false: it is skipped and counted
    num_workers: int = MISSING

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def cache_key(self) -> str:
        import hashlib

        folder = Path(self.path).expanduser().resolve()
        return f"folder-{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}-{self.image_size}px-{self.channels}ch"

    def check(self) -> None:
        super().check()
        require_positive("data.image_size", self.image_size, "a positive side in pixels, such as 32, 64 or 128")
        require_choice("data.channels", self.channels, (1, 3))
        if self.num_workers < 0:
            raise invalid(
                "data.num_workers", self.num_workers, "0 (load in the training process) or more worker processes"
            )

    def image_files(self) -> List[Path]:
        folder = Path(self.path).expanduser()
        if not folder.is_dir():
            raise invalid("data.path", self.path, "an existing folder of images")
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    def scan(self) -> Tuple[List[Path], List[int]]:
        """Readable image files and their labels (index of the class sub-folder; 0 without sub-folders)."""
        folder = Path(self.path).expanduser()
        files = self.image_files()
        good = [f for f in files if readable(f)]
        readable_files = set(good)
        bad = [f for f in files if f not in readable_files]
        if bad and self.strict:
            raise UserError(
                f"data.path={self.path!r}: {len(bad)} unreadable image file(s), the first {bad[0]} (data.strict=true; false skips them)."
            )
        if bad:
            log.warning(
                f"data.path={self.path!r}: skipped {len(bad)} unreadable image file(s) of {len(files)}, the first {bad[0]}"
            )
        if not good:
            raise UserError(
                f"data.path={self.path!r} holds no readable image ({', '.join(IMAGE_SUFFIXES)}); found {len(files)} image file name(s)."
            )
        classes = sorted({f.relative_to(folder).parts[0] for f in good if len(f.relative_to(folder).parts) > 1})
        labels = [
            classes.index(f.relative_to(folder).parts[0]) if len(f.relative_to(folder).parts) > 1 else 0 for f in good
        ]
        return good, labels

    def domain_extractor_problem(self) -> Optional[str]:
        # The classifier learns to tell the class sub-folders apart, from 4 epochs of 256-image batches.
        images = len(self.image_files()) if Path(self.path).expanduser().is_dir() else 0
        if not images:
            return None  # no data at all: prepare() says so
        classes = self.num_classes
        if classes < 2:
            return (
                f"data.path={self.path!r} has {classes} class sub-folder(s), and a domain feature extractor is a "
                f"classifier of at least 2 classes"
            )
        if images < MIN_DOMAIN_IMAGES:
            return (
                f"data.path={self.path!r} has {images} image files, and a domain feature extractor trains on at least "
                f"{MIN_DOMAIN_IMAGES}"
            )
        return None

    def prepare(self) -> None:
        if not self.image_files():
            raise UserError(f"data.path={self.path!r} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")

    @property
    def num_classes(self) -> int:
        folder = Path(self.path).expanduser()
        return len([p for p in folder.iterdir() if p.is_dir()]) if folder.is_dir() else 0

    def datamodule(self, samples_per_step: int, seed: int, labelled: bool = False) -> pl.LightningDataModule:
        return implementation("gan_lightning.data.folder.FolderDataModule")(self, samples_per_step, seed, labelled)

    def labelled_images(self, split: str) -> Tuple[Tensor, Tensor]:
        files, labels = self.scan()
        return torch.stack([decode(f, self.image_size, self.channels) for f in files]), torch.tensor(labels)


# ---------------------------------------------------------------- CIFAR-10

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Reads CIFAR's pickled dicts of numpy arrays and refuses any other object, so a crafted file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def read_cifar_batch(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        try:
            batch = NumpyOnlyUnpickler(f, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as error:
            raise UserError(f"{path} is not a CIFAR-10 python batch ({error}).") from None
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(batch[b"labels"], dtype=np.int64)


@dataclass
class Cifar10(StoredImages, name="cifar10"):
    """CIFAR-10 (Krizhevsky 2009): 50 000 training images, 32×32 RGB, 10 classes, held in memory as one tensor.
    ``data.root``: a folder holding cifar-10-batches-py/ (or the batches themselves)."""

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        return (3, 32, 32)

    @property
    def cache_key(self) -> str:
        return "cifar10"

    def candidates(self) -> List[Path]:
        base = Path(self.root).expanduser() if self.root else cache_root() / "cifar10"
        return [base / CIFAR_FOLDER, base]

    def locate(self) -> Path:
        for folder in self.candidates():
            if all((folder / name).is_file() for names in CIFAR_BATCHES.values() for name in names):
                return folder
        tried = " and ".join(str(p) for p in self.candidates())
        if not self.download:
            raise UserError(
                f"CIFAR-10 was not found in {tried}; downloading is off (data.download=false). Put the python batches ({CIFAR_FOLDER}/ from {CIFAR_URL}) in data.root."
            )
        target = self.candidates()[1]
        try:
            archive = download(CIFAR_URL, target / "cifar-10-python.tar.gz")
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        except OSError as error:
            raise UserError(
                f"CIFAR-10 was not found in {tried} and the download from {CIFAR_URL} failed ({download_error(error)}). "
                f"Put the python batches ({CIFAR_FOLDER}/) in a folder and pass data.root=FOLDER."
            ) from None
        return target / CIFAR_FOLDER

    def labelled_images(self, split: str) -> Tuple[Tensor, Tensor]:
        folder = self.locate()
        parts = [read_cifar_batch(folder / name) for name in CIFAR_BATCHES[split]]
        return torch.from_numpy(np.concatenate([p[0] for p in parts])), torch.from_numpy(
            np.concatenate([p[1] for p in parts])
        )

    @property
    def num_classes(self) -> int:
        return 10

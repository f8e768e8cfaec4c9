"""The ``domain`` feature extractor: a small classifier trained on the data set itself.

Inception-v3 features are the standard for natural images, but on 28×28 grey-scale data a classifier
of the data's own labels is the usual practice (and runs on a CPU). It is trained once per data set,
cached, and registered with torch-fidelity, so FID, IS, KID and precision/recall run through the same code.
"""

from __future__ import annotations

import fcntl
import logging
import time
from pathlib import Path
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from tqdm import tqdm

from gan_lightning.files import atomic_write, cache_root, count_cache_build

log = logging.getLogger("gan_lightning")

NAME = "gan_lightning-domain"
VERSION = 1  # bump when the architecture or training recipe changes: cached extractors are then rebuilt


class DomainClassifier(nn.Module):
    """Two convolution blocks and a 128-unit feature layer; logits over the data set's classes."""

    def __init__(self, channels: int, side: int, classes: int, width: int = 16, feature_dim: int = 128):
        super().__init__()
        self.arch = {"channels": channels, "side": side, "classes": classes, "width": width, "feature_dim": feature_dim}
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (side // 4) ** 2, feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, classes))

    def forward(self, images_uint8: Tensor) -> Tuple[Tensor, Tensor]:
        features = self.body(images_uint8.float() / 127.5 - 1.0)
        return features, self.head(features)


# Extractors that ship with the project (built by ``python -m gan_lightning.extractor``, which reproduces them bit
# for bit on a CPU): every machine scores with the same weights, so FIDs compare across machines (docs/metrics.md).
SHIPPED = Path(__file__).resolve().parent / "extractors"


def built_path(data_config) -> Path:
    """Where a build for this machine's cache goes (``python -m gan_lightning.extractor``)."""
    return cache_root() / "extractors" / f"domain-{data_config.cache_key}-v{VERSION}.pt"


def extractor_path(data_config) -> Path:
    """The extractor image metrics use: one built in the cache, else the one shipped for this data set, else where
    a build goes."""
    built, shipped = built_path(data_config), SHIPPED / f"domain-{data_config.cache_key}-v{VERSION}.pt"
    return shipped if shipped.is_file() and not built.is_file() else built


def accuracy(model: DomainClassifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(images[i : i + batch_size])[1].argmax(1) == labels[i : i + batch_size]).sum().item()
            for i in range(0, len(images), batch_size)
        )
    return correct / len(images)


def train_domain_classifier(data_config, epochs: int = 4, batch_size: int = 256, seed: int = 0) -> Dict:
    """Train on the training split, measure on the test split, save to the cache; returns the saved record."""
    images, labels = data_config.labelled_images("train")
    test_images, test_labels = data_config.labelled_images("test")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DomainClassifier(images.shape[1], images.shape[2], int(labels.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, total_steps=epochs * (len(images) // batch_size)
    )
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        batches = range(0, len(images) - batch_size + 1, batch_size)
        for start in tqdm(
            batches,
            desc=f"domain extractor {data_config.cache_key}, epoch {epoch + 1}/{epochs}",
            unit="batch",
            mininterval=5,
        ):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(model(images[index])[1], labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    record = {
        "version": VERSION,
        "dataset": data_config.cache_key,
        "arch": model.arch,
        "state_dict": model.state_dict(),
        "test_accuracy": accuracy(model, test_images, test_labels),
    }
    path = atomic_write(built_path(data_config), lambda f: torch.save(record, f))
    log.info(
        f"domain feature extractor for {data_config.cache_key}: test accuracy {record['test_accuracy']:.4f}, saved to {path}"
    )
    return record


def ensure_domain_extractor(data_config, force: bool = False) -> Path:
    """The extractor of this data set (``extractor_path``), trained into the cache first if there is none (or with
    ``force``). One process trains it: the others that need it meanwhile (the jobs of a parallel sweep, two test
    sessions) wait for its file."""
    path = extractor_path(data_config)
    if path.is_file() and not force:
        return path
    path = built_path(data_config)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(path.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(f"waiting for another process that builds the domain feature extractor {path.name}")
            fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel however its holder ends
            force = False  # just built by that process
        if force or not path.is_file():
            log.info(
                f"building the domain feature extractor for {data_config.cache_key} (once; cached in {path.parent})"
            )
            train_domain_classifier(data_config)
    count_cache_build(time.perf_counter() - started)
    return path


class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity's view of a DomainClassifier: ``features`` for FID/KID/PRC, ``logits_unbiased`` for IS."""

    images_embedded = 0  # counts every image passed through any instance (shows when cached features are used)

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        record = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
        self.classifier = DomainClassifier(**record["arch"])
        self.classifier.load_state_dict(record["state_dict"])
        self.classifier.eval()

    @staticmethod
    def get_provided_features_list():
        return ("features", "logits_unbiased")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits_unbiased", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return None

    def forward(self, images_uint8: Tensor):
        DomainFeatureExtractor.images_embedded += len(images_uint8)
        features, logits = self.classifier(images_uint8)
        provided = {"features": features, "logits_unbiased": logits}
        return tuple(provided[name] for name in self.features_list)


register_feature_extractor(NAME, DomainFeatureExtractor)

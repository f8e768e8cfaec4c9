"""``metrics=image``: FID, IS, KID and precision/recall through torch-fidelity, with cached real-data features."""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import torch
import torch_fidelity
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity.metric_fid import (
    fid_featuresdict_to_statistics,
    fid_featuresdict_to_statistics_cached,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import isc_featuresdict_to_metric
from torch_fidelity.utils import (
    create_feature_extractor,
    extract_featuresdict_from_input_id_cached,
    resolve_feature_layer_for_metric,
)

from gan_lightning.errors import UserError, invalid
from gan_lightning.files import cache_root, download, download_error
from gan_lightning.metrics import domain  # noqa: F401  (registers the domain extractor with torch-fidelity)
from gan_lightning.metrics.copying import CELLS, copying
from gan_lightning.metrics.evaluation import Evaluation, concatenate
from gan_lightning.metrics.manifold import Reference
from gan_lightning.training.distributed import Shares

if TYPE_CHECKING:
    from gan_lightning.metrics.configs import ImageMetrics

log = logging.getLogger("gan_lightning")

INCEPTION = "inception-v3-compat"
INCEPTION_URL = torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3

# The result keys of what torch-fidelity computes here (FID, IS), as this project names them in logs and summary.json.
RESULT_KEYS = {
    "frechet_inception_distance": "fid",
    "inception_score_mean": "is_mean",
    "inception_score_std": "is_std",
}


class ImageTensors(Dataset):
    """uint8 images (N, C, H, W) as torch-fidelity reads them; grey-scale repeated to RGB when asked."""

    def __init__(self, images: Tensor, rgb: bool):
        self.images, self.rgb = images, rgb

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        image = self.images[index]
        return image.expand(3, *image.shape[1:]) if self.rgb and image.shape[0] == 1 else image


def to_uint8(images: Tensor, value_range: Tuple[float, float]) -> Tensor:
    low, high = value_range
    return ((images.float().clamp(low, high) - low) * (255.0 / (high - low))).round().to(torch.uint8)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def feature_extractor(config: ImageMetrics, data_config) -> Tuple[str, Path]:
    """(torch-fidelity extractor name, weights file) of ``metrics.features``, building or fetching the weights."""
    if config.features == "domain":
        return domain.NAME, domain.ensure_domain_extractor(data_config)
    return INCEPTION, inception_weights_path(config.inception_weights)


def inception_weights_path(configured: Optional[str]) -> Path:
    """A local copy of torch-fidelity's Inception-v3 weights: the configured file, the torch hub cache, or a download."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise invalid("metrics.inception_weights", configured, "the path of an Inception-v3 state dict file")
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:
            raise UserError(
                f"metrics.inception_weights={configured!r} is not a loadable tensor file ({type(error).__name__})."
            ) from None
        return path
    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[-1]
    if path.is_file():
        return path
    try:
        download(INCEPTION_URL, path)
    except OSError as error:
        raise UserError(
            f"metrics.features=inception needs the Inception-v3 weights, which could not be downloaded from {INCEPTION_URL} "
            f"({download_error(error)}). Pass metrics.inception_weights=PATH to a local copy, or use "
            "metrics.features=domain (a classifier trained on the data set itself, which needs no download)."
        ) from None
    return path


class RealImages:
    """The reference set: ``count`` images of a split (a seeded choice), and a cache name for its features."""

    def __init__(
        self, data_config, split: str, count: int, extractor_name: str, weights: Path, rgb: bool, seed: int = 0
    ):
        images, labels = data_config.labelled_images(split)
        if count < len(images):
            chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
            images, labels = images[chosen], labels[chosen]
        self.dataset, self.labels = ImageTensors(images, rgb), labels
        # Every key that changes the features is in the name, so a change never reuses stale statistics.
        self.cache_name = (
            f"{data_config.cache_key}-{split}-n{len(images)}-seed{seed}-{extractor_name}-{file_digest(weights)}"
        )

    def of_class(self, label: int) -> RealImages:
        """The reference images of one class (for intra-class FID), cached under their own name."""
        part = RealImages.__new__(RealImages)
        keep = self.labels == label
        part.dataset, part.labels = ImageTensors(self.dataset.images[keep], self.dataset.rgb), self.labels[keep]
        part.cache_name = f"{self.cache_name}-class{label}"
        return part


class Features:
    """torch-fidelity's feature extractor ``name`` with the layers that FID, IS, KID and precision/recall read."""

    METRICS = ("isc", "fid", "kid", "prc")

    def __init__(self, name: str, weights: Path, cuda: bool):
        self.cuda = cuda
        self.layers = {
            metric: resolve_feature_layer_for_metric(metric, feature_extractor=name) for metric in self.METRICS
        }
        self.extractor = create_feature_extractor(
            name,
            sorted(set(self.layers.values())),
            cuda=cuda,
            feature_extractor_weights_path=str(weights),
            verbose=False,
        )
        self.rgb = name == INCEPTION
        self.references: Dict[str, ReferenceFeatures] = {}  # by the reference set's cache name

    def __call__(self, images: Tensor) -> Dict[str, Tensor]:
        """The features of uint8 images (N, C, H, W), on the CPU, by layer."""
        if self.rgb and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        with torch.no_grad():
            features = self.extractor(images.cuda() if self.cuda else images.cpu())
        return {layer: value.cpu() for layer, value in self.extractor.convert_features_tuple_to_dict(features).items()}

    def scores(
        self, fake: Dict[str, Tensor], real: RealImages, kid_subset_size: int, batch_size: int, only_fid: bool = False
    ) -> Dict[str, float]:
        """FID, IS, KID, precision and recall (or FID alone) of generated images' features ``fake`` against ``real``.
        torch-fidelity computes FID and IS, and the real features and FID statistics, which it caches on disk under
        the reference set's name; KID and precision/recall are its estimators with the reference's share kept in
        memory (gan_lightning/metrics/manifold.py)."""
        options = dict(
            cache_root=str(cache_root() / "fidelity"),
            batch_size=batch_size,
            cuda=self.cuda,
            save_cpu_ram=True,
            verbose=False,
            isc_splits=10,
        )
        reference = self.reference(real, options)
        results = fid_statistics_to_metric(
            fid_featuresdict_to_statistics(fake, self.layers["fid"]), reference.fid_statistics, False
        )
        if not only_fid:
            results.update(isc_featuresdict_to_metric(fake, self.layers["isc"], **options))
        scores = {ours: float(results[theirs]) for theirs, ours in RESULT_KEYS.items() if theirs in results}
        if not only_fid:
            subset_size = min(kid_subset_size, len(fake[self.layers["kid"]]), len(real.dataset))
            scores.update(reference.manifold(self.layers["kid"]).kid(fake[self.layers["kid"]], subset_size))
            scores.update(reference.manifold(self.layers["prc"]).precision_recall(fake[self.layers["prc"]]))
        return scores

    def reference(self, real: RealImages, options: Dict[str, Any]) -> ReferenceFeatures:
        if real.cache_name not in self.references:
            features = extract_featuresdict_from_input_id_cached(
                2, self.extractor, input2=real.dataset, input2_cache_name=real.cache_name, **options
            )
            statistics = fid_featuresdict_to_statistics_cached(
                features, real.cache_name, self.extractor, self.layers["fid"], **options
            )
            self.references[real.cache_name] = ReferenceFeatures(features, statistics)
        return self.references[real.cache_name]


class ReferenceFeatures:
    """A reference set's features by layer, its FID statistics, and per layer what KID and precision/recall keep of it."""

    def __init__(self, features: Dict[str, Tensor], fid_statistics: Dict[str, Any]):
        self.features, self.fid_statistics = features, fid_statistics
        self.manifolds: Dict[str, Reference] = {}

    def manifold(self, layer: str) -> Reference:
        if layer not in self.manifolds:
            self.manifolds[layer] = Reference(self.features[layer])
        return self.manifolds[layer]


@functools.lru_cache(maxsize=4)
def shared_features(name: str, weights: str, digest: str, cuda: bool) -> Features:
    """One Features per extractor (and weights digest) in a process: the evaluations of every run of a multirun and
    of every checkpoint ``evaluate`` scores share the extractor and what it keeps of each reference set."""
    return Features(name, Path(weights), cuda)


def image_metrics(
    fake: Tensor,
    real: RealImages,
    extractor_name: str,
    weights: Path,
    kid_subset_size: int,
    batch_size: int,
    cuda: bool,
    only_fid: bool = False,
) -> Dict[str, float]:
    """FID, IS, KID, precision and recall (or FID alone) of uint8 images ``fake`` against ``real``, whose features are cached."""
    features = Features(extractor_name, weights, cuda)
    embedded = concatenate([features(fake[i : i + batch_size]) for i in range(0, len(fake), batch_size)])
    return features.scores(embedded, real, kid_subset_size, batch_size, only_fid)


class ImageQuality(Evaluation):
    def __init__(self, config: ImageMetrics, data_config, seed: int):
        super().__init__(config.every_n_steps, seed)
        self.config, self.data_config = config, data_config
        self.extractor_name, self.weights = config.extractor(data_config)
        self.weights_digest = file_digest(self.weights)  # for the protocol of every score: hashed once
        rgb = self.extractor_name == INCEPTION
        self.real = RealImages(
            data_config, config.real_split, config.real_num_samples, self.extractor_name, self.weights, rgb
        )
        self.batch_size = config.batch_size  # generated images per forward pass, and per batch of features
        self.features: Optional[Features] = None  # built by the first batch embedded, on its device
        self.copying_sets: Optional[tuple] = None  # their features (data copying), at the first score

    @functools.cached_property
    def copying_images(self) -> Optional[Tuple[Tensor, Tensor]]:
        """The training images data copying compares with, ``copying_samples`` of those G trains on (its data.subset)
        chosen by the seed, and as many held-out ones; None (not measured) where copying_samples is 0 or the data
        have no held-out split. Read once, when a protocol or a score first needs them."""
        if self.config.copying_samples <= 0:
            return None
        heldout = self.data_config.heldout_images(self.config.copying_samples)
        if heldout is None:
            return None
        training = self.data_config.load(self.seed)
        n = min(self.config.copying_samples, len(training))
        chosen = torch.randperm(len(training), generator=torch.Generator().manual_seed(self.seed))[:n]
        return training[chosen], heldout[0][:n]  # the held-out choice keeps its first n for a smaller n

    @property
    def copying_count(self) -> int:
        """The training and held-out images data copying compares with (0: not measured)."""
        return 0 if self.copying_images is None else len(self.copying_images[0])

    def copying_features(self) -> tuple:
        """The features (the layer precision and recall read) of the ``copying_images``."""
        if self.copying_sets is None:
            layer, value_range = self.features.layers["prc"], self.data_config.value_range
            self.copying_sets = tuple(
                torch.cat([self.features(to_uint8(images[i : i + self.batch_size], value_range))[layer]
                           for i in range(0, len(images), self.batch_size)])
                for images in self.copying_images
            )  # fmt: skip
        return self.copying_sets

    def method(self, final: bool) -> Dict[str, Any]:
        inception = self.extractor_name == INCEPTION
        count = self.copying_count
        copying = {"copying": {"training": count, "heldout": count, "layer": "prc", "cells": CELLS}} if count else {}
        return {
            "generated": self.config.final_num_samples if final else self.config.num_samples,
            "real": len(self.real.dataset),
            "reference": f"{self.data_config.cache_key} {self.config.real_split} split",
            "extractor": self.extractor_name,
            "extractor_sha256": self.weights_digest,
            # torch-fidelity's Inception-v3 resizes to 299 × 299 itself (bilinear, as the TensorFlow original);
            # the domain extractor reads the data's own resolution.
            "resize": "bilinear to 299x299 (torch-fidelity, TensorFlow-compatible)" if inception else "none",
            "kid_subset_size": self.config.kid_subset_size,
            "library": f"torch-fidelity {torch_fidelity.__version__}",
            **copying,
        }

    def sample_count(self, final: bool) -> int:
        return self.config.final_num_samples if final else self.config.num_samples

    def embed(self, samples: Tensor) -> Dict[str, Tensor]:
        cuda = samples.device.type == "cuda"
        if self.features is None or self.features.cuda != cuda:
            self.features = shared_features(self.extractor_name, str(self.weights), self.weights_digest, cuda)
        return self.features(to_uint8(samples, self.data_config.value_range))

    def score(self, embedded: Dict[str, Tensor], final: bool) -> Dict[str, float]:
        scores = self.features_scores(embedded, self.real)
        if self.copying_count:
            train, heldout = self.copying_features()
            scores.update(copying(embedded[self.features.layers["prc"]], train, heldout))
        return scores

    def features_scores(
        self, embedded: Dict[str, Tensor], real: RealImages, only_fid: bool = False
    ) -> Dict[str, float]:
        # The first process always embeds the first batch: its features extractor exists.
        return self.features.scores(embedded, real, self.config.kid_subset_size, self.config.batch_size, only_fid)

    def measure(self, pl_module, final: bool, shares: Optional[Shares] = None) -> Optional[Dict[str, float]]:
        shares = shares or Shares()
        results = super().measure(pl_module, final, shares)
        classes = pl_module.generator.num_classes
        if self.config.intra_fid and classes:
            per_class = []
            for label in range(classes):
                labels = torch.full((max(2, self.sample_count(final) // classes),), label, dtype=torch.long)
                embedded = self.generate(pl_module, len(labels), shares, labels)
                if embedded is not None:
                    per_class.append(self.features_scores(embedded, self.real.of_class(label), only_fid=True)["fid"])
            if results is not None:
                results["intra_fid"] = sum(per_class) / len(per_class)
        return results

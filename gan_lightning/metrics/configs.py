"""The ``metrics`` config group: what is measured on generated samples, how often, and its settings' checks.

Each option's evaluation (a Lightning callback) lives beside its formulas (``modes``, ``toy1d``, ``parzen``,
``fidelity``) and is imported when a run builds it: composing and checking a config needs no torch.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Dict, List, Optional, Tuple

from omegaconf import MISSING

from gan_lightning.data.toy import Gaussian1D, GaussianMixture2D
from gan_lightning.errors import UserError, invalid, require_choice, require_positive
from gan_lightning.registry import Registered, implementation

if TYPE_CHECKING:
    import pytorch_lightning as pl

log = logging.getLogger("gan_lightning")

# What a user's data that cannot train a domain feature extractor can use instead.
WITHOUT_DOMAIN = (
    "for FID on it, use metrics=image metrics.features=inception metrics.inception_weights=FILE (Inception-v3 "
    "weights, docs/metrics.md), or metrics=none"
)


@dataclass
class MetricsConfig(Registered, group="metrics"):
    """The ``metrics`` config group: what is measured on generated samples, and how often."""

    every_n_steps: int = MISSING  # evaluate every N training steps (and at the last one); 0: at the last step only
    MEASURES: ClassVar[Tuple[str, ...]] = ()  # the metrics it logs that have a better direction (SUMMARY_GOALS)

    def check(self, data_config) -> None:
        """Raise a UserError when these metrics cannot be computed for ``data_config``."""
        if self.every_n_steps < 0:
            raise invalid("metrics.every_n_steps", self.every_n_steps, "a number of steps, or 0 for the last step only")

    def prepare(self, data_config) -> None:
        """Make sure what the metrics need (feature extractor weights) is there before a run writes anything."""

    def callback(self, data_config, seed: int) -> Optional[pl.Callback]:
        """The callback that computes and logs these metrics during training, or None."""
        return None

    # trainer.fast_dev_run: the sample counts of each option's smoke version (every option measures at the end only).
    SMOKE: ClassVar[Dict[str, int]] = {}

    def smoke(self) -> MetricsConfig:
        """These metrics measured once, at the end, on a few samples: what trainer.fast_dev_run computes."""
        return dataclasses.replace(
            self, every_n_steps=0, **{name: min(getattr(self, name), n) for name, n in self.SMOKE.items()}
        )


@dataclass
class NoMetrics(MetricsConfig, name="none"):
    """Track losses and D's outputs only."""

    reason: str = ""  # why metrics=auto measures nothing on this data (said when the run starts)

    def prepare(self, data_config) -> None:
        if self.reason:
            log.warning(self.reason)


@dataclass
class Toy2DMetrics(MetricsConfig, name="toy2d"):
    """``metrics=toy2d``: modes captured, high-quality fraction, reverse KL and the balanced high-quality fraction
    on ring8/grid25."""

    MEASURES = ("modes", "hq_fraction", "reverse_kl", "balanced_hq_fraction")
    SMOKE = {"num_samples": 500}

    num_samples: int = MISSING  # samples per evaluation (PacGAN: 2 500)
    threshold: float = MISSING  # high quality: within this many standard deviations of a mode

    def check(self, data_config) -> None:
        super().check(data_config)
        require_positive("metrics.num_samples", self.num_samples, "a positive number of samples")
        require_positive("metrics.threshold", self.threshold, "a positive number of standard deviations")
        if not isinstance(data_config, GaussianMixture2D):
            raise UserError(
                f"metrics=toy2d needs a 2-D Gaussian mixture (data=ring8 or data=grid25), not {type(data_config).__name__} data."
            )

    def callback(self, data_config, seed: int):
        return implementation("gan_lightning.metrics.modes.ModeCoverage")(self, data_config, seed)


@dataclass
class Toy1DMetrics(MetricsConfig, name="toy1d"):
    """``metrics=toy1d``: the Wasserstein-1 distance and the Kolmogorov–Smirnov statistic between G's samples and
    the data's normal distribution (``data=gaussian1d``)."""

    MEASURES = ("w1_distance", "ks_statistic")
    SMOKE = {"num_samples": 1000}

    num_samples: int = MISSING  # samples per evaluation

    def check(self, data_config) -> None:
        super().check(data_config)
        require_positive("metrics.num_samples", self.num_samples, "a positive number of samples")
        if not isinstance(data_config, Gaussian1D):
            raise UserError(
                f"metrics=toy1d needs the 1-D normal distribution (data=gaussian1d), not {type(data_config).__name__} data."
            )

    def callback(self, data_config, seed: int):
        return implementation("gan_lightning.metrics.toy1d.NormalDistances")(self, data_config, seed)


@dataclass
class ParzenMetrics(MetricsConfig, name="parzen"):
    """``metrics=parzen``: the Parzen-window test log-likelihood of Goodfellow et al. 2014, on pixels in [0, 1].

    As in the paper's code (``parzen_ll.py``): the window is fitted on ``num_samples`` generated images,
    σ is the best of ``sigmas`` on ``validation_num_samples`` training images from ``validation_start`` on
    (images the run did not train on when ``data.limit`` ≤ ``validation_start``), and the estimate is the
    mean log-likelihood of the first ``test_num_samples`` test images with its standard error.
    """

    MEASURES = ("parzen_log_likelihood",)
    SMOKE = {"num_samples": 200, "validation_num_samples": 200, "test_num_samples": 200}

    num_samples: int = MISSING
    validation_start: int = MISSING
    validation_num_samples: int = MISSING
    test_num_samples: int = MISSING
    sigmas: List[float] = field(default_factory=lambda: MISSING)

    def check(self, data_config) -> None:
        super().check(data_config)
        for name in ("num_samples", "validation_num_samples", "test_num_samples"):
            require_positive(f"metrics.{name}", getattr(self, name), "a positive number of images")
        if self.validation_start < 0:
            raise invalid(
                "metrics.validation_start", self.validation_start, "an index into the training images, 0 or more"
            )
        if not self.sigmas or min(self.sigmas) <= 0:
            raise invalid("metrics.sigmas", list(self.sigmas), "a non-empty list of positive bandwidths")
        if len(data_config.sample_shape) != 3 or data_config.value_range is None:
            raise UserError(
                f"metrics=parzen needs image data (mnist, fashion_mnist), not {type(data_config).__name__} data."
            )
        limit = getattr(data_config, "limit", None)
        if limit is None or limit > self.validation_start:
            # Not an error (the paper's σ would then be chosen on images G was trained on), but worth knowing.
            logging.getLogger("gan_lightning").warning(
                f"metrics=parzen chooses σ on training images from {self.validation_start} on, which this run trains on "
                f"(data.limit={limit}); set data.limit={self.validation_start} to hold them out, as the paper does"
            )

    def callback(self, data_config, seed: int):
        return implementation("gan_lightning.metrics.parzen.ParzenEvaluation")(self, data_config, seed)


@dataclass
class ImageMetrics(MetricsConfig, name="image"):
    """``metrics=image``: FID, IS, KID and precision/recall of generated images."""

    MEASURES = ("fid", "is_mean", "kid_mean", "precision", "recall", "intra_fid")
    SMOKE = {"num_samples": 200, "final_num_samples": 200, "real_num_samples": 500, "kid_subset_size": 100,
             "copying_samples": 200}  # fmt: skip

    features: str = MISSING  # domain | inception
    inception_weights: Optional[str] = MISSING  # a local Inception-v3 state dict; null: torch hub cache or download
    num_samples: int = MISSING  # generated samples per periodic evaluation
    final_num_samples: int = MISSING  # generated samples at the last step
    real_split: str = MISSING  # the real images compared against
    real_num_samples: int = MISSING
    kid_subset_size: int = MISSING
    batch_size: int = MISSING
    intra_fid: bool = MISSING  # conditional G: also the mean FID over classes (Miyato & Koyama 2018), one per class
    # Data copying (gan_lightning/metrics/copying.py): this many training images against as many held-out ones; 0: off
    copying_samples: int = MISSING

    def check(self, data_config) -> None:
        super().check(data_config)
        require_choice("metrics.features", self.features, ("domain", "inception"))
        if self.copying_samples < 0:
            raise invalid("metrics.copying_samples", self.copying_samples, "0 (off) or a positive number of images")
        for name in ("num_samples", "final_num_samples", "real_num_samples", "kid_subset_size", "batch_size"):
            require_positive(f"metrics.{name}", getattr(self, name), "a positive number")
        if len(data_config.sample_shape) != 3:
            raise UserError(
                f"metrics=image needs image data, but the data's samples have shape {data_config.sample_shape}; use metrics=toy2d for ring8 and grid25."
            )
        problem = data_config.domain_extractor_problem() if self.features == "domain" else None
        if problem:
            raise UserError(f"metrics.features=domain cannot be used: {problem}; {WITHOUT_DOMAIN}.")

    def extractor(self, data_config) -> Tuple[str, Path]:
        """(torch-fidelity extractor name, weights file), building or fetching the weights when needed."""
        return implementation("gan_lightning.metrics.fidelity.feature_extractor")(self, data_config)

    def prepare(self, data_config) -> None:
        self.extractor(data_config)

    def callback(self, data_config, seed: int):
        return implementation("gan_lightning.metrics.fidelity.ImageQuality")(self, data_config, seed)


@dataclass
class AutoMetrics(MetricsConfig, name="auto"):
    """Image metrics for image data, mode coverage for the 2-D mixtures, distances to the normal for gaussian1d
    (each with the settings under its own key, but for ``every_n_steps``, which applies to whichever is chosen); no
    metrics for other data. The run trains with the chosen one."""

    image: ImageMetrics = MISSING
    toy2d: Toy2DMetrics = MISSING
    toy1d: Toy1DMetrics = MISSING

    def choose(self, data_config) -> MetricsConfig:
        if len(data_config.sample_shape) == 3:
            problem = data_config.domain_extractor_problem() if self.image.features == "domain" else None
            if problem:
                return NoMetrics(
                    every_n_steps=0, reason=f"metrics=auto measures no image metrics: {problem}; {WITHOUT_DOMAIN}"
                )
            chosen: MetricsConfig = self.image
        elif isinstance(data_config, GaussianMixture2D):
            chosen = self.toy2d
        elif isinstance(data_config, Gaussian1D):
            chosen = self.toy1d
        else:
            return NoMetrics(every_n_steps=0)
        chosen.every_n_steps = self.every_n_steps
        return chosen

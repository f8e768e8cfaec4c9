"""The ``augment`` config group: what D's inputs go through, real and generated alike (none, diffaug, ada)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from omegaconf import MISSING

from gan_lightning.augment.ada import TRANSFORMS as ADA_TRANSFORMS
from gan_lightning.augment.ada import AdaptiveAugment
from gan_lightning.augment.diffaug import POLICIES as DIFFAUG_POLICIES
from gan_lightning.augment.diffaug import DiffAugment
from gan_lightning.errors import invalid, require_positive
from gan_lightning.registry import Registered


@dataclass
class AugmentConfig(Registered, group="augment"):
    """Base of the options: ``build`` gives the callable applied to every image D sees (None: the images as they
    are)."""

    def check(self, data_config: Any, trainer: Any) -> None:
        if self.option == "none":
            return
        if len(data_config.sample_shape) != 3:
            raise invalid("augment", self.option, "none for data that are not images (augmentations transform images)")
        if trainer.cuda_graph:
            raise invalid(
                "augment",
                self.option,
                "none with trainer.cuda_graph=true: augmentations draw per image and ADA moves p between steps, "
                "which a replayed graph would not; set trainer.cuda_graph=false to augment",
            )

    def build(self) -> Optional[Any]:
        return None

    def callbacks(self) -> List[Any]:
        """What a run adds to its trainer for this augmentation (ADA: the control of p)."""
        return []


@dataclass
class NoAugment(AugmentConfig, name="none"):
    """D sees the images as they are."""


@dataclass
class DiffAugmentConfig(AugmentConfig, name="diffaug"):
    """DiffAugment (Zhao et al. 2020): the policies, in D's and G's updates, on every image D sees."""

    policy: List[str] = field(default_factory=lambda: MISSING)  # of color, translation, cutout

    def check(self, data_config: Any, trainer: Any) -> None:
        super().check(data_config, trainer)
        unknown = [name for name in self.policy if name not in DIFFAUG_POLICIES]
        if unknown:
            raise invalid("augment.policy", list(self.policy), f"a list of {', '.join(DIFFAUG_POLICIES)}")

    def build(self):
        return DiffAugment(self.policy)


@dataclass
class AdaConfig(AugmentConfig, name="ada"):
    """Adaptive augmentation (Karras et al. 2020): each transform with probability p, p following r_t."""

    transforms: List[str] = field(default_factory=lambda: MISSING)  # the pipeline (bgc: all twelve)
    p: float = MISSING  # the probability at the start
    target: float = MISSING  # the r_t that p steers towards (0.6 in the paper)
    interval: int = MISSING  # adjust p every N training steps
    speed_images: int = MISSING  # real images over which p can move from 0 to 1 (500 000 in the paper)

    def check(self, data_config: Any, trainer: Any) -> None:
        super().check(data_config, trainer)
        unknown = [name for name in self.transforms if name not in ADA_TRANSFORMS]
        if unknown:
            raise invalid("augment.transforms", list(self.transforms), f"a list of {', '.join(ADA_TRANSFORMS)}")
        if not 0.0 <= self.p <= 1.0:
            raise invalid("augment.p", self.p, "a probability in [0, 1]")
        if not 0.0 < self.target < 1.0:
            raise invalid("augment.target", self.target, "an r_t in (0, 1), such as the paper's 0.6")
        require_positive("augment.interval", self.interval, "a positive number of steps, such as 4")
        require_positive("augment.speed_images", self.speed_images, "a positive number of images, such as 500000")

    def build(self):
        return AdaptiveAugment(self.transforms, self.p, self.target, self.interval, self.speed_images)

    def callbacks(self) -> List[Any]:
        from gan_lightning.augment.control import AdaptiveAugmentControl

        return [AdaptiveAugmentControl()]

"""Augmenting what D sees, for small data sets: DiffAugment (``augment=diffaug``) and adaptive augmentation
(``augment=ada``), applied to real and generated images alike in D's and G's updates."""

from __future__ import annotations

from gan_lightning.augment.configs import AugmentConfig  # importing the options registers their schemas

__all__ = ["AugmentConfig"]

"""Sample-quality metrics tracked during training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytorch_lightning as pl

from gan_lightning.registry import Registered


@dataclass
class MetricsConfig(Registered, group="metrics"):
    """The ``metrics`` config group: what is measured on generated samples, and how often."""

    def callback(self, data_config) -> Optional[pl.Callback]:
        """The callback that computes and logs these metrics, or None."""
        return None


@dataclass
class NoMetrics(MetricsConfig, name="none"):
    """Track losses and D's outputs only."""

"""Sample-quality metrics tracked during training and computed on checkpoints.

``metrics=toy2d``: mode coverage on 2-D mixtures; ``metrics=image``: FID, IS, KID and precision/recall
through torch-fidelity, with Inception-v3 or a classifier trained on the data set as feature extractor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple

import pytorch_lightning as pl
import torch
from omegaconf import MISSING
from torch import Tensor

from gan_lightning.periodic import Periodic
from gan_lightning.errors import invalid
from gan_lightning.registry import Registered


# Whether lower or higher is better: W&B keeps the best value of each as the run's summary.
SUMMARY_GOALS = {
    "fid": "min",
    "intra_fid": "min",
    "kid_mean": "min",
    "reverse_kl": "min",
    "is_mean": "max",
    "precision": "max",
    "recall": "max",
    "modes": "max",
    "hq_fraction": "max",
    "parzen_log_likelihood": "max",
}


def better(metric: str, value: float, than: float) -> bool:
    """Whether ``value`` of ``metric`` is strictly better than ``than`` (so the first of equal values stays the best)."""
    return value < than if SUMMARY_GOALS[metric] == "min" else value > than


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


@dataclass
class NoMetrics(MetricsConfig, name="none"):
    """Track losses and D's outputs only."""


class Evaluation(Periodic):
    """Measures generated samples every N steps and at the last step; logs ``metrics/<name>``.

    Measured on rank 0 (the other ranks wait); samples come from the sampling generator (the EMA of G
    when enabled) in eval mode from latents fixed by the seed, so successive values differ only by G.
    """

    def __init__(self, every_n_steps: int, seed: int):
        super().__init__(every_n_steps)
        self.seed = seed
        self.latest: Dict[str, float] = {}
        self.latest_protocol: Dict[str, Any] = {}  # how the latest values were computed

    def protocol(self, pl_module, final: bool) -> Dict[str, Any]:
        """How a score is computed, stored beside it: two scores are comparable only under the same protocol."""
        sampler = "ema" if getattr(pl_module, "generator_ema", None) is not None else "generator"
        return {**self.method(final), "sampler": sampler, "latent_seed": self.seed}

    def method(self, final: bool) -> Dict[str, Any]:
        """What the metric's own settings make of a score (sample counts, reference set, features, library)."""
        raise NotImplementedError

    def on_train_start(self, trainer, pl_module) -> None:
        # In the W&B run's config and the CSV log's hparams.yaml, before the first score.
        protocols = {"periodic": self.protocol(pl_module, final=False), "final": self.protocol(pl_module, final=True)}
        for logger in trainer.loggers:
            logger.log_hyperparams({"metrics_protocol": protocols})

    def on_train_end(self, trainer, pl_module) -> None:
        pass  # metrics belong to completed steps: the last one is measured in on_train_batch_end

    def fire(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            final = pl_module.max_steps is not None and pl_module.steps_done >= pl_module.max_steps
            self.latest = self.measure(pl_module, final)
            self.latest_protocol = self.protocol(pl_module, final)
            step = pl_module.logged_step  # the step the training step's scalars are logged at
            for logger in trainer.loggers:
                logger.log_metrics({f"metrics/{k}": v for k, v in self.latest.items()}, step=step)
        trainer.strategy.barrier()

    def measure(self, pl_module, final: bool) -> Dict[str, float]:
        raise NotImplementedError

    def generate(self, pl_module, n: int, batch_size: int = 500, labels: Optional[Tensor] = None) -> Tensor:
        """``n`` samples from latents fixed by the seed; a conditional G gets ``labels``, or uniformly drawn ones."""
        generator = torch.Generator().manual_seed(self.seed)
        if labels is None:
            labels = pl_module.generator.sample_labels(n, generator=generator)
        batches = []
        for i in range(0, n, batch_size):
            z = pl_module.generator.sample_latent(min(batch_size, n - i), generator=generator)
            batches.append(pl_module.generate(z, None if labels is None else labels[i : i + batch_size]).cpu())
        return torch.cat(batches)


def latest_evaluation(trainer) -> Tuple[Dict[str, float], Dict[str, Any]]:
    """The latest values of the trainer's sample-quality metrics (fid, is_mean, modes, ...) and how they were
    computed; both empty before the first evaluation."""
    metrics: Dict[str, float] = {}
    protocol: Dict[str, Any] = {}
    for callback in trainer.callbacks:
        if isinstance(callback, Evaluation):
            metrics.update(callback.latest)
            protocol.update(callback.latest_protocol)
    return metrics, protocol


from gan_lightning.metrics.frechet import frechet_distance  # noqa: E402
from gan_lightning.metrics.modes import mode_coverage  # noqa: E402
from gan_lightning.metrics import fidelity  # noqa: E402,F401  (registers metrics=image)
from gan_lightning.metrics import parzen  # noqa: E402,F401  (registers metrics=parzen)

__all__ = ["MetricsConfig", "Evaluation", "frechet_distance", "mode_coverage"]

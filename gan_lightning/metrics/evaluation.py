"""The callback every sample-quality metric is measured by during training, and what a run reads of its results."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from gan_lightning.metrics.goals import SUMMARY_GOALS, better
from gan_lightning.training.distributed import Shares
from gan_lightning.training.periodic import Periodic


class Evaluation(Periodic):
    """Measures generated samples every N steps and at the last step; logs ``metrics/<name>`` with ``time/wall_s``.

    Samples come from the sampling generator (the EMA of G when enabled) in eval mode, from latents fixed by the
    seed, so successive values differ only by G. In a data-parallel run every process generates and embeds its
    share of the batches (``embed``: features, for image metrics); rank 0 gathers them in order and scores them, so
    the result equals one process's.
    """

    batch_size = 500  # generated samples per forward pass (and per share of the work)

    def __init__(self, every_n_steps: int, seed: int):
        super().__init__(every_n_steps)
        self.seed = seed
        self.latest: Dict[str, float] = {}
        self.latest_protocol: Dict[str, Any] = {}  # how the latest values were computed
        self.latest_share = 0  # generated batches this process computed for the latest evaluation
        self.seconds = 0.0  # wall time spent evaluating in this run (this session of it)
        # The best value of each metric (and its step) over this session's evaluations under the periodic protocol,
        # the final one included where it is the same: values of other protocols are never compared.
        self.best: Dict[str, Dict[str, float]] = {}
        # The run's wall clock beside each score (``time/wall_s``), so scores compare against time as well as steps:
        # seconds since training started, continued from the checkpoint a resumed run starts from (steps trained
        # again after a resume count once, as they were first trained).
        self.wall_s_before = 0.0
        self.clock_started = time.perf_counter()

    def protocol(self, pl_module, final: bool) -> Dict[str, Any]:
        """How a score is computed, stored beside it: two scores are comparable only under the same protocol."""
        sampler = "ema" if getattr(pl_module, "generator_ema", None) is not None else "generator"
        return {**self.method(final), "sampler": sampler, "latent_seed": self.seed}

    def method(self, final: bool) -> Dict[str, Any]:
        """What the metric's own settings make of a score (sample counts, reference set, features, library)."""
        raise NotImplementedError

    def wall_s(self) -> float:
        return self.wall_s_before + time.perf_counter() - self.clock_started

    def state_dict(self) -> Dict[str, Any]:
        return {"wall_s": self.wall_s()}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.wall_s_before = float(state_dict.get("wall_s", 0.0))

    def on_train_start(self, trainer, pl_module) -> None:
        self.clock_started = time.perf_counter()
        # In the W&B run's config and the CSV log's hparams.yaml, before the first score.
        protocols = {"periodic": self.protocol(pl_module, final=False), "final": self.protocol(pl_module, final=True)}
        for logger in trainer.loggers:
            logger.log_hyperparams({"metrics_protocol": protocols})

    def on_train_end(self, trainer, pl_module) -> None:
        pass  # metrics belong to completed steps: the last one is measured in on_train_batch_end

    def fire(self, trainer, pl_module) -> None:
        final = pl_module.max_steps is not None and pl_module.steps_done >= pl_module.max_steps
        started = time.perf_counter()
        measured = self.measure(pl_module, final, Shares.of_job())
        self.seconds += time.perf_counter() - started
        if trainer.is_global_zero:
            self.latest, self.latest_protocol = measured, self.protocol(pl_module, final)
            step = pl_module.logged_step  # the step the training step's scalars are logged at
            if not final or self.latest_protocol == self.protocol(pl_module, final=False):
                self.keep_best(measured, step)
            for logger in trainer.loggers:
                logger.log_metrics(
                    {**{f"metrics/{k}": v for k, v in self.latest.items()}, "time/wall_s": round(self.wall_s(), 3)},
                    step=step,
                )
        trainer.strategy.barrier()

    def keep_best(self, measured: Dict[str, float], step: int) -> None:
        for name, value in measured.items():
            if name in SUMMARY_GOALS and (name not in self.best or better(name, value, self.best[name]["value"])):
                self.best[name] = {"value": value, "step": step}

    def measure(self, pl_module, final: bool, shares: Optional[Shares] = None) -> Optional[Dict[str, float]]:
        """The metrics of G's samples, computed together by the processes of ``shares`` (default: this one alone);
        None on all but the first."""
        embedded = self.generate(pl_module, self.sample_count(final), shares or Shares())
        return None if embedded is None else self.score(embedded, final)

    def sample_count(self, final: bool) -> int:
        raise NotImplementedError

    def embed(self, samples: Tensor) -> Any:
        """What the metric reads of a batch of generated samples, computed where they were generated."""
        return samples.cpu()

    def score(self, embedded: Any, final: bool) -> Dict[str, float]:
        """The metrics from the embedded samples (``embed``'s results, concatenated in sample order)."""
        raise NotImplementedError

    def generate(self, pl_module, n: int, shares: Shares, labels: Optional[Tensor] = None) -> Any:
        """``n`` samples from latents fixed by the seed, embedded: a conditional G gets ``labels``, or uniformly drawn
        ones. Every process draws every batch's latents and generates its share of the batches, so each batch is
        computed as one process computes it; the first process gets the embedded batches back, in order."""
        generator = torch.Generator().manual_seed(self.seed)
        if labels is None:
            labels = pl_module.generator.sample_labels(n, generator=generator)
        starts = range(0, n, self.batch_size)
        latents = [pl_module.generator.sample_latent(min(self.batch_size, n - i), generator=generator) for i in starts]
        done = {}
        self.latest_share = len(shares.mine(len(latents)))
        for part in shares.mine(len(latents)):
            start = starts[part]
            part_labels = None if labels is None else labels[start : start + self.batch_size]
            done[part] = self.embed(pl_module.generate(latents[part], part_labels))
        parts = shares.collect(done)
        return None if parts is None else concatenate(parts)


def concatenate(parts: List[Any]) -> Any:
    """Embedded batches joined in order: tensors, or dicts of tensors (features by layer)."""
    if isinstance(parts[0], dict):
        return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    return torch.cat(parts)


def best_evaluation(trainer, pl_module) -> Dict[str, Any]:
    """The best value and step of each metric over the periodic evaluations, with that protocol (empty before the
    first evaluation)."""
    best: Dict[str, Any] = {}
    for callback in trainer.callbacks:
        if isinstance(callback, Evaluation) and callback.best:
            best.update(callback.best)
            best["protocol"] = callback.protocol(pl_module, final=False)
    return best


def latest_evaluation(trainer) -> Tuple[Dict[str, float], Dict[str, Any], float]:
    """The latest values of the trainer's sample-quality metrics (fid, is_mean, modes, ...), how they were computed
    (both empty before the first evaluation) and the seconds spent evaluating."""
    metrics: Dict[str, float] = {}
    protocol: Dict[str, Any] = {}
    seconds = 0.0
    for callback in trainer.callbacks:
        if isinstance(callback, Evaluation):
            metrics.update(callback.latest)
            protocol.update(callback.latest_protocol)
            seconds += callback.seconds
    return metrics, protocol, seconds


def latest_evaluation_step(callbacks) -> Optional[int]:
    """The step the latest sample-quality evaluation among ``callbacks`` was measured at; None before the first."""
    steps = [c.last_fired_step for c in callbacks if isinstance(c, Evaluation) and c.latest]
    return max(steps) if steps else None

"""A Lightning callback for tests of data-parallel runs: what each process saw and ended with.

Added to a real run from the command line (``'callbacks.extra=[{_target_:tests.helpers.probe.RankProbe}]'``,
with the repository on PYTHONPATH), so every process of the job runs it; each writes
``<run dir>/probe/rank<N>.pt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytorch_lightning as pl
import torch

from gan_lightning.metrics.evaluation import Evaluation


def parameters(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


class RankProbe(pl.Callback):
    def __init__(self, batches: int = 3):
        self.batches = batches
        self.record: Dict[str, Any] = {"batches": []}

    def on_train_start(self, trainer, pl_module) -> None:
        # The next latents this process would draw: a copy of its random stream, left untouched.
        stream = torch.Generator().set_state(torch.get_rng_state())
        self.record.update(
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            start=parameters(pl_module),
            first_latents=torch.randn(8, pl_module.generator.latent_dim, generator=stream),
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if len(self.record["batches"]) < self.batches:
            self.record["batches"].append(batch.detach().clone())

    def on_train_end(self, trainer, pl_module) -> None:
        self.record.update(
            end=parameters(pl_module),
            metrics={k: float(v) for k, v in trainer.callback_metrics.items()},
            steps_done=pl_module.steps_done,
            # Generated batches this process computed for the latest evaluation, per evaluation callback.
            evaluation_shares=[c.latest_share for c in trainer.callbacks if isinstance(c, Evaluation)],
        )
        folder = Path(trainer.default_root_dir) / "probe"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.record, folder / f"rank{trainer.global_rank}.pt")


def load(run_dir: Path) -> Dict[int, Dict[str, Any]]:
    return {
        int(p.stem[4:]): torch.load(p, weights_only=True) for p in sorted((Path(run_dir) / "probe").glob("rank*.pt"))
    }

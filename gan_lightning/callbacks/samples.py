"""Sample grids from one fixed latent batch, so frames of a run compare like with like."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from pytorch_lightning.loggers import WandbLogger

from gan_lightning.callbacks.schedule import Periodic


class SampleGrid(Periodic):
    """Writes ``samples/step_<N>.png`` (and ``samples/last.png``) every N steps and at the end, and logs it."""

    def __init__(self, data_config, folder: Path, every_n_steps: int, num_samples: int, seed: int):
        super().__init__(every_n_steps)
        self.data_config, self.folder = data_config, Path(folder)
        self.num_samples, self.seed = num_samples, seed
        self.latents = None

    def on_train_start(self, trainer, pl_module) -> None:
        # Drawn from its own generator: the fixed batch never depends on, or disturbs, the training RNG.
        self.latents = pl_module.generator.sample_latent(self.num_samples, generator=torch.Generator().manual_seed(self.seed))

    def fire(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        samples = pl_module.generate(self.latents)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step_{pl_module.steps_done:06d}.png"
        self.data_config.save_samples(samples, path)
        shutil.copyfile(path, self.folder / "last.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                step = trainer.fit_loop.epoch_loop._batches_that_stepped  # the step Lightning logs scalars at
                logger.log_image("samples", [str(path)], step=step, caption=[f"step {pl_module.steps_done}"])

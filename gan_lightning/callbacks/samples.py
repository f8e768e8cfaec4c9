"""Sample grids from one fixed latent batch, so frames of a run compare like with like."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import torch
from pytorch_lightning.loggers import WandbLogger

from gan_lightning.training.periodic import Periodic


def class_rows(num_classes: int, num_samples: int) -> Optional[torch.Tensor]:
    """Labels for a grid with one row per class (0, 0, ..., 1, 1, ...); None for an unconditional G."""
    if not num_classes:
        return None
    return torch.arange(num_classes).repeat_interleave(max(1, num_samples // num_classes))


class SampleGrid(Periodic):
    """Writes ``samples/step_<N>.png`` (and ``samples/last.png``) every N steps and at the end, and logs it."""

    def __init__(self, data_config, folder: Path, every_n_steps: int, num_samples: int, seed: int, size: int = 0):
        super().__init__(every_n_steps)
        self.data_config, self.folder, self.size = data_config, Path(folder), size
        self.num_samples, self.seed = num_samples, seed
        self.latents = None

    def on_train_start(self, trainer, pl_module) -> None:
        # Drawn from its own generator: the fixed batch never depends on, or disturbs, the training RNG.
        generator = pl_module.generator
        self.labels = class_rows(generator.num_classes, self.num_samples)
        count = self.num_samples if self.labels is None else len(self.labels)
        self.latents = generator.sample_latent(count, generator=torch.Generator().manual_seed(self.seed))
        if pl_module.steps_done > 0 and trainer.is_global_zero:
            self.resend_grids(trainer, pl_module.steps_done)

    def resend_grids(self, trainer, resumed_at: int) -> None:
        """A resumed run sends the grids of the steps its checkpoint covers that W&B lacks (a kill can take W&B's
        last records with it; the W&B logger drops those it has)."""
        for path in sorted(self.folder.glob("step_*.png")):
            steps_done = int(path.stem.split("_")[1])
            if steps_done <= resumed_at:
                self.log_grid(trainer, path, steps_done, steps_done)

    def log_grid(self, trainer, path: Path, steps_done: int, step: int) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("samples", [str(path)], step=step, caption=[f"step {steps_done}"])

    def fire(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        samples = pl_module.generate(self.latents, self.labels)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"step_{pl_module.steps_done:06d}.png"
        # D over the data's space, for data whose picture can show it (1-D: D(x) over p_data and p_g).
        discriminator = pl_module.discriminate if pl_module.d_pack == 1 and not pl_module.conditional else None
        self.data_config.save_samples(
            samples, path, self.labels, discriminator, title=f"step {pl_module.steps_done}", size=self.size
        )
        shutil.copyfile(path, self.folder / "last.png")
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not wandb_loggers:
            return
        step = pl_module.logged_step  # the step the training step's scalars are logged at
        self.log_grid(trainer, path, pl_module.steps_done, step)
        histograms = self.discriminator_outputs(trainer, pl_module)
        for logger in wandb_loggers:
            logger.log_histograms(histograms, step)

    def discriminator_outputs(self, trainer, pl_module):
        """D's outputs (probabilities for classifier objectives) on real data and on the fixed-latent fakes."""
        fake = pl_module.generate(self.latents, self.labels)
        n = len(fake) - len(fake) % pl_module.d_pack  # whole packs only, for a packing D
        real, real_labels = trainer.datamodule.real_samples(n, self.seed)
        labels = None if self.labels is None else torch.cat([real_labels, self.labels[:n]])
        real_out, fake_out = pl_module.discriminate(torch.cat([real.to(fake.device), fake[:n]]), labels).chunk(2)
        return {"d_outputs/real": real_out, "d_outputs/fake": fake_out}

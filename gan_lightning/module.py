"""The GAN as a LightningModule: manual optimization alternating D and G updates, nothing else."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gan_lightning.models import Generator
from gan_lightning.objectives import Objective
from gan_lightning.optim import OptimizerConfig


class GAN(pl.LightningModule):
    """Each training step is one iteration of Algorithm 1 of Goodfellow et al. 2014.

    The batch holds ``d_steps`` real minibatches. For each, D takes one update on that real minibatch and
    a fresh fake one; then G takes ``g_steps`` updates on fresh latents. D scores real and fake samples in
    one forward pass, so DDP sees one graph per update. When D's output for one sample depends on the
    rest of its batch (batch norm), the G update scores real and fake together too: D(G(z)) is then
    computed the same way in both updates, instead of on a fake-only batch whose statistics D never saw.
    """

    def __init__(
        self,
        generator: Generator,
        discriminator: nn.Module,
        objective: Objective,
        g_optimizer: OptimizerConfig,
        d_optimizer: OptimizerConfig,
        d_steps: int = 1,
        g_steps: int = 1,
        max_steps: Optional[int] = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator, self.objective = generator, discriminator, objective
        self.g_optimizer_config, self.d_optimizer_config = g_optimizer, d_optimizer
        self.d_steps, self.g_steps, self.max_steps = d_steps, g_steps, max_steps
        self.steps_done = 0  # completed training steps (iterations), saved in checkpoints
        self.d_batch_coupled = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules())

    def configure_optimizers(self):
        return [self.d_optimizer_config.build(self.discriminator.parameters()), self.g_optimizer_config.build(self.generator.parameters())]

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        d_optimizer, g_optimizer = self.optimizers()
        for real in batch.chunk(self.d_steps):
            d_loss, real_out, fake_out = self.discriminator_update(real, d_optimizer)
        for _ in range(self.g_steps):
            g_loss = self.generator_update(real, g_optimizer)
        self.steps_done += 1
        self.log_dict(
            {
                "loss/d": d_loss.detach(),
                "loss/g": g_loss.detach(),
                "d/real": self.objective.d_output(real_out.detach()).mean(),
                "d/fake": self.objective.d_output(fake_out.detach()).mean(),
            },
            on_step=True,
            on_epoch=False,
            batch_size=len(real),
        )
        if self.max_steps is not None and self.steps_done >= self.max_steps:
            self.trainer.should_stop = True

    def discriminator_update(self, real: Tensor, optimizer) -> tuple[Tensor, Tensor, Tensor]:
        self.toggle_optimizer(optimizer)
        with torch.no_grad():
            fake = self.generator(self.generator.sample_latent(len(real)))
        real_out, fake_out = self.discriminator(torch.cat([real, fake])).split(len(real))
        loss = self.objective.d_loss(real_out, fake_out)
        penalty = self.objective.d_penalty(self.discriminator, real, fake)
        if penalty is not None:
            loss = loss + penalty
        self.apply_update(loss, optimizer, self.d_optimizer_config)
        self.objective.after_d_step(self.discriminator)
        self.untoggle_optimizer(optimizer)
        return loss, real_out, fake_out

    def generator_update(self, real: Tensor, optimizer) -> Tensor:
        self.toggle_optimizer(optimizer)
        fake = self.generator(self.generator.sample_latent(len(real)))
        if self.d_batch_coupled or self.objective.g_uses_real:
            real_out, fake_out = self.discriminator(torch.cat([real, fake])).split(len(real))
        else:
            real_out, fake_out = None, self.discriminator(fake)
        loss = self.objective.g_loss(fake_out, real_out)
        self.apply_update(loss, optimizer, self.g_optimizer_config)
        self.untoggle_optimizer(optimizer)
        return loss

    def apply_update(self, loss: Tensor, optimizer, config: OptimizerConfig) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if config.grad_clip_norm is not None:
            self.clip_gradients(optimizer, gradient_clip_val=config.grad_clip_norm, gradient_clip_algorithm="norm")
        optimizer.step()

    @torch.no_grad()
    def generate(self, z: Tensor) -> Tensor:
        """Samples for inspection and evaluation: G in eval mode, no gradients."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z.to(self.device))
        finally:
            self.generator.train(was_training)

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["gan_lightning"] = {"steps_done": self.steps_done}

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        self.steps_done = checkpoint["gan_lightning"]["steps_done"]

"""The GAN as a LightningModule: manual optimization alternating D and G updates, nothing else."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gan_lightning.ema import ExponentialMovingAverage
from gan_lightning.errors import Diverged, UserError
from gan_lightning.models import Generator
from gan_lightning.objectives import Objective, r1_penalty
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
        r1_gamma: float = 0.0,
        r1_interval: int = 1,
        ema_decay: Optional[float] = None,
        ema_start_step: int = 0,
        on_nan: str = "stop",
    ):
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator, self.objective = generator, discriminator, objective
        self.g_optimizer_config, self.d_optimizer_config = g_optimizer, d_optimizer
        self.d_steps, self.g_steps, self.max_steps = d_steps, g_steps, max_steps
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.generator_ema = ExponentialMovingAverage(generator, ema_decay) if ema_decay is not None else None
        self.ema_start_step = ema_start_step
        self.on_nan = on_nan  # "stop": raise Diverged; "skip": drop the update and count it
        self.steps_done = 0  # completed training steps (iterations), saved in checkpoints
        self.skipped_updates = 0
        self.d_batch_coupled = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules())
        if objective.per_sample_d and self.d_batch_coupled:
            raise UserError(
                f"objective={type(objective).__name__} penalises D's gradient at single samples, but D uses batch norm, "
                "which mixes the samples of a batch: use model.d_norm=layer or model.d_norm=none."
            )

    def configure_optimizers(self):
        return [self.d_optimizer_config.build(self.discriminator.parameters()), self.g_optimizer_config.build(self.generator.parameters())]

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        d_optimizer, g_optimizer = self.optimizers()
        self.d_optimizer_config.adjust(d_optimizer, self.steps_done)
        self.g_optimizer_config.adjust(g_optimizer, self.steps_done)
        for i, real in enumerate(batch.chunk(self.d_steps)):
            d_loss, real_out, fake_out = self.discriminator_update(real, d_optimizer, self.steps_done * self.d_steps + i)
        for _ in range(self.g_steps):
            g_loss = self.generator_update(real, g_optimizer)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, decay=0.0 if self.steps_done < self.ema_start_step else None)
        self.steps_done += 1
        logged = {
            "loss/d": d_loss.detach(),
            "loss/g": g_loss.detach(),
            "d/real": self.objective.d_output(real_out.detach()).mean(),
            "d/fake": self.objective.d_output(fake_out.detach()).mean(),
        }
        if self.on_nan == "skip":
            logged["train/skipped_updates"] = float(self.skipped_updates)
        self.log_dict(
            logged,
            on_step=True,
            on_epoch=False,
            batch_size=len(real),
        )
        if self.max_steps is not None and self.steps_done >= self.max_steps:
            self.trainer.should_stop = True

    def discriminator_update(self, real: Tensor, optimizer, update_index: int) -> tuple[Tensor, Tensor, Tensor]:
        self.toggle_optimizer(optimizer)
        with torch.no_grad():
            fake = self.generator(self.generator.sample_latent(len(real)))
        r1_due = self.r1_gamma > 0 and update_index % self.r1_interval == 0
        if r1_due:
            real = real.detach().requires_grad_(True)
        real_out, fake_out = self.discriminator(torch.cat([real, fake])).split(len(real))
        loss = self.objective.d_loss(real_out, fake_out)
        penalty = self.objective.d_penalty(self.discriminator, real, fake)
        if penalty is not None:
            loss = loss + penalty
        if r1_due:
            # Lazy regularisation: applied every r1_interval updates with r1_interval times the weight.
            loss = loss + self.r1_gamma / 2 * r1_penalty(real_out, real) * self.r1_interval
        if self.apply_update(loss, optimizer, self.d_optimizer_config, "loss/d"):
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
        self.apply_update(loss, optimizer, self.g_optimizer_config, "loss/g")
        self.untoggle_optimizer(optimizer)
        return loss

    def apply_update(self, loss: Tensor, optimizer, config: OptimizerConfig, name: str) -> bool:
        """Backward and step; a non-finite loss stops the run or, with on_nan=skip, drops this update."""
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            if self.on_nan == "stop":
                raise Diverged(self.steps_done + 1, name, loss.item())
            self.skipped_updates += 1
            return False
        self.manual_backward(loss)
        if config.grad_clip_norm is not None:
            self.clip_gradients(optimizer, gradient_clip_val=config.grad_clip_norm, gradient_clip_algorithm="norm")
        optimizer.step()
        return True

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA of G's weights when enabled, else G."""
        return self.generator_ema.network if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: Tensor) -> Tensor:
        """Samples for inspection and evaluation: in eval mode, without gradients."""
        sampler = self.sampler
        was_training = sampler.training
        sampler.eval()
        try:
            return sampler(z.to(self.device))
        finally:
            sampler.train(was_training)

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        # The random state makes a resumed run draw the latents an uninterrupted one would have drawn.
        checkpoint["gan_lightning"] = {
            "steps_done": self.steps_done,
            "skipped_updates": self.skipped_updates,
            "cpu_rng_state": torch.get_rng_state(),
            "cuda_rng_states": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        state = checkpoint["gan_lightning"]
        self.steps_done, self.skipped_updates = state["steps_done"], state["skipped_updates"]
        torch.set_rng_state(state["cpu_rng_state"])
        if state["cuda_rng_states"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng_states"])

    def first_nonfinite_weight(self) -> Optional[str]:
        """The name of a parameter holding NaN or infinity, if any."""
        for name, parameter in self.named_parameters():
            if not torch.isfinite(parameter).all():
                return name
        return None

"""What callbacks and commands read of a GAN, trained or training: samples of its sampling generator (the EMA of G
when kept), D's outputs as logged, whether its weights are finite."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import torch
from torch import Tensor, nn

from gan_lightning.training.losses import score


@contextmanager
def eval_mode(network: nn.Module):
    """``network`` in eval mode for the block, then back in the mode it was in."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)


class Sampling:
    """Reading a GAN module's networks (a mixin of the GAN LightningModule: generator, generator_ema, discriminator,
    objective, device, dtype)."""

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA of G's weights when enabled, else G."""
        return self.generator_ema.network if self.generator_ema is not None else self.generator

    @property
    def conditional(self) -> bool:
        return self.generator.num_classes > 0

    @property
    def d_pack(self) -> int:
        """Samples per D output: more than 1 when D scores packs of samples (PacGAN)."""
        return getattr(self.discriminator, "pack", 1)

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Samples for inspection and evaluation: in eval mode, without gradients; ``labels`` for a conditional G."""
        with eval_mode(self.sampler) as sampler:
            return sampler(self.as_input(z), labels.to(self.device) if labels is not None else None)

    @torch.no_grad()
    def discriminate(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """D's outputs for inspection, as logged (probabilities for classifier objectives): in eval mode, without gradients."""
        with eval_mode(self.discriminator) as discriminator:
            return self.objective.d_output(
                score(discriminator, self.as_input(x), labels.to(self.device) if labels is not None else None)
            )

    def as_input(self, x: Tensor) -> Tensor:
        """``x`` on the module's device, in its precision (trainer.precision=64-true trains in float64)."""
        return x.to(self.device, dtype=self.dtype if x.is_floating_point() else x.dtype)

    def first_nonfinite_weight(self) -> Optional[str]:
        """The name of a parameter holding NaN or infinity, if any."""
        for name, parameter in self.named_parameters():
            if not torch.isfinite(parameter).all():
                return name
        return None

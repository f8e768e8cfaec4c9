"""Model families: each builds a generator and a discriminator sized from the data's sample shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from omegaconf import MISSING
from torch import Tensor, nn

from gan_lightning.errors import require_choice, require_positive
from gan_lightning.models.layers import OUTPUTS, apply_spectral_norm
from gan_lightning.registry import Registered

LATENT_DISTRIBUTIONS = ("normal", "uniform")


class Generator(nn.Module):
    """A network from latent vectors to samples; it knows how to draw its own latents."""

    def __init__(self, latent_dim: int, latent_distribution: str, sample_shape: Tuple[int, ...]):
        super().__init__()
        self.latent_dim = latent_dim
        self.latent_distribution = latent_distribution
        self.sample_shape = tuple(sample_shape)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        """``n`` latent vectors: standard normal, or uniform on [−1, 1] as in Goodfellow et al. 2014."""
        device = device if device is not None else next(self.parameters()).device
        if self.latent_distribution == "uniform":
            z = torch.rand(n, self.latent_dim, generator=generator, device="cpu" if generator is not None else device) * 2 - 1
        else:
            z = torch.randn(n, self.latent_dim, generator=generator, device="cpu" if generator is not None else device)
        return z.to(device)


@dataclass
class ModelConfig(Registered, group="model"):
    """Settings every model family shares."""

    latent_dim: int = MISSING
    latent_distribution: str = MISSING
    output: str = MISSING  # G's output activation; "auto" follows the data's value range
    d_spectral_norm: bool = MISSING

    def check(self, sample_shape: Tuple[int, ...]) -> None:
        """Raise a UserError when these settings cannot model data of ``sample_shape``."""
        require_positive("model.latent_dim", self.latent_dim, "a positive number of latent dimensions")
        require_choice("model.latent_distribution", self.latent_distribution, LATENT_DISTRIBUTIONS)
        require_choice("model.output", self.output, OUTPUTS)

    def build(
        self, sample_shape: Tuple[int, ...], value_range: Optional[Tuple[float, float]], per_sample_d: bool = False
    ) -> Tuple[Generator, nn.Module]:
        """G and D for data of ``sample_shape``; ``per_sample_d``: the objective needs D's gradient at single samples."""
        self.check(sample_shape)
        generator = self.generator(tuple(sample_shape), value_range)
        discriminator = self.discriminator(tuple(sample_shape), per_sample_d)
        if self.d_spectral_norm:
            apply_spectral_norm(discriminator)
        return generator, discriminator

    def generator(self, sample_shape: Tuple[int, ...], value_range) -> Generator:
        raise NotImplementedError

    def discriminator(self, sample_shape: Tuple[int, ...], per_sample_d: bool) -> nn.Module:
        raise NotImplementedError


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Radford et al. 2016: weights from N(0, 0.02), normalisation scales from N(1, 0.02), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


# Importing the families registers their schemas.
from gan_lightning.models import dcgan, mlp  # noqa: E402,F401

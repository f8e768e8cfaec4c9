"""The generator's base class: a network from latent vectors (and labels) to samples, drawing its own latents."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn


class Generator(nn.Module):
    """A network from latent vectors (and class labels, when conditional) to samples; it draws its own latents."""

    def __init__(self, latent_dim: int, latent_distribution: str, sample_shape: Tuple[int, ...], num_classes: int = 0):
        super().__init__()
        self.latent_dim = latent_dim
        self.latent_distribution = latent_distribution
        self.sample_shape = tuple(sample_shape)
        self.num_classes = num_classes  # 0: unconditional

    def sample_labels(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> Optional[Tensor]:
        """``n`` class labels drawn uniformly, or None for an unconditional G."""
        if not self.num_classes:
            return None
        device = device if device is not None else next(self.parameters()).device
        return torch.randint(
            self.num_classes, (n,), generator=generator, device="cpu" if generator is not None else device
        ).to(device)

    def with_labels(self, z: Tensor, labels: Optional[Tensor]) -> Tensor:
        """z with the one-hot label appended (Mirza & Osindero 2014); z itself when unconditional."""
        if not self.num_classes:
            return z
        return torch.cat([z, torch.nn.functional.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        """``n`` latent vectors: standard normal, or uniform on [−1, 1] as in Goodfellow et al. 2014."""
        device = device if device is not None else next(self.parameters()).device
        if self.latent_distribution == "uniform":
            z = (
                torch.rand(
                    n,
                    self.latent_dim,
                    generator=generator,
                    device=generator.device if generator is not None else device,
                )
                * 2
                - 1
            )
        else:
            z = torch.randn(
                n, self.latent_dim, generator=generator, device=generator.device if generator is not None else device
            )
        return z.to(device)


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

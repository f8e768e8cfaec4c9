"""Model families: each builds a generator and a discriminator sized from the data's sample shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from omegaconf import MISSING
from torch import Tensor, nn

from gan_lightning.errors import UserError, require_choice, require_positive
from gan_lightning.models.conditional import COND_D, ConditionalDiscriminator
from gan_lightning.models.layers import OUTPUTS, apply_spectral_norm
from gan_lightning.registry import Registered

LATENT_DISTRIBUTIONS = ("normal", "uniform")
# How a D with batch statistics (batch norm) sees real and fake samples: in separate minibatches (the DCGAN
# reference code, Lightning's GAN tutorial, common practice), or together in one minibatch (see docs/objectives.md).
D_BATCH_STATS = ("separate", "joint")


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
        return torch.randint(self.num_classes, (n,), generator=generator, device="cpu" if generator is not None else device).to(device)

    def with_labels(self, z: Tensor, labels: Optional[Tensor]) -> Tensor:
        """z with the one-hot label appended (Mirza & Osindero 2014); z itself when unconditional."""
        if not self.num_classes:
            return z
        return torch.cat([z, torch.nn.functional.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
        """``n`` latent vectors: standard normal, or uniform on [−1, 1] as in Goodfellow et al. 2014."""
        device = device if device is not None else next(self.parameters()).device
        if self.latent_distribution == "uniform":
            z = torch.rand(n, self.latent_dim, generator=generator, device=generator.device if generator is not None else device) * 2 - 1
        else:
            z = torch.randn(n, self.latent_dim, generator=generator, device=generator.device if generator is not None else device)
        return z.to(device)


@dataclass
class ModelConfig(Registered, group="model"):
    """Settings every model family shares."""

    latent_dim: int = MISSING
    latent_distribution: str = MISSING
    output: str = MISSING  # G's output activation; "auto" follows the data's value range
    d_spectral_norm: bool = MISSING
    conditional: bool = MISSING  # class-conditional G and D, for labelled data
    cond_d: str = MISSING  # projection (Miyato & Koyama 2018) | acgan (Odena et al. 2017)
    d_batch_stats: str = MISSING  # separate | joint: the minibatches a D with batch norm normalises over

    @property
    def d_pack(self) -> int:
        """Samples per D output: more than 1 when D scores packs of samples (PacGAN, Lin et al. 2018)."""
        return 1

    def check(self, sample_shape: Tuple[int, ...]) -> None:
        """Raise a UserError when these settings cannot model data of ``sample_shape``."""
        require_positive("model.latent_dim", self.latent_dim, "a positive number of latent dimensions")
        require_choice("model.latent_distribution", self.latent_distribution, LATENT_DISTRIBUTIONS)
        require_choice("model.output", self.output, OUTPUTS)
        require_choice("model.cond_d", self.cond_d, COND_D)
        require_choice("model.d_batch_stats", self.d_batch_stats, D_BATCH_STATS)

    def build(
        self, sample_shape: Tuple[int, ...], value_range: Optional[Tuple[float, float]], per_sample_d: bool = False, num_classes: int = 0
    ) -> Tuple[Generator, nn.Module]:
        """G and D for data of ``sample_shape``; ``per_sample_d``: the objective needs D's gradient at single samples;
        ``num_classes``: the number of labels of the data (0 when it has none)."""
        self.check(sample_shape)
        if self.conditional and num_classes < 2:
            raise UserError("model.conditional=true needs labelled data with at least two classes (fashion_mnist, mnist, cifar10, "
                            "ring8, grid25, or an image_folder with class sub-folders).")  # fmt: skip
        classes = num_classes if self.conditional else 0
        generator = self.generator(tuple(sample_shape), value_range, classes)
        discriminator = self.discriminator(tuple(sample_shape), per_sample_d)
        if classes:
            discriminator = ConditionalDiscriminator(discriminator, classes, self.cond_d)
        if self.d_spectral_norm:
            apply_spectral_norm(discriminator)
        return generator, discriminator

    def generator(self, sample_shape: Tuple[int, ...], value_range, num_classes: int) -> Generator:
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
from gan_lightning.models import dcgan, mlp, resnet  # noqa: E402,F401

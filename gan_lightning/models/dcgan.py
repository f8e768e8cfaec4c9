"""Radford et al. 2016 (DCGAN): strided (transposed) convolutions, sized from the image shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from omegaconf import MISSING
from torch import Tensor, nn

from gan_lightning.errors import UserError, require_choice, require_positive
from gan_lightning.models import Generator, ModelConfig, init_weights
from gan_lightning.models.layers import ACTIVATIONS, NORMS, activation, norm_2d, output_activation


def resolution_stages(side: int) -> Tuple[int, int]:
    """(base side, number of ×2 stages): 28 → (7, 2), 32 → (4, 3), 64 → (4, 4)."""
    stages = 0
    while side % 2 == 0 and side > 7:
        side //= 2
        stages += 1
    return side, stages


class DCGANGenerator(Generator):
    def __init__(self, cfg: "DCGAN", sample_shape: Tuple[int, ...], value_range, num_classes: int):
        super().__init__(cfg.latent_dim, cfg.latent_distribution, sample_shape, num_classes)
        channels, side, _ = sample_shape
        self.base, stages = resolution_stages(side)
        widths = [cfg.g_width * 2 ** i for i in reversed(range(stages))]  # e.g. [4w, 2w, w]
        self.project = nn.Sequential(
            nn.Linear(cfg.latent_dim + num_classes, widths[0] * self.base**2, bias=cfg.g_norm == "none"),
            nn.Unflatten(1, (widths[0], self.base, self.base)),
            norm_2d(cfg.g_norm, widths[0]),
            activation(cfg.g_activation),
        )
        layers: List[nn.Module] = []
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [
                nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=cfg.g_norm == "none"),
                norm_2d(cfg.g_norm, w_out),
                activation(cfg.g_activation),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), output_activation(cfg.output, value_range)]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.net(self.project(self.with_labels(z, labels)))


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: "DCGAN", sample_shape: Tuple[int, ...], norm: str):
        super().__init__()
        channels, side, _ = sample_shape
        base, stages = resolution_stages(side)
        widths = [cfg.d_width * 2**i for i in range(stages)]  # e.g. [w, 2w, 4w]
        layers: List[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip([channels] + widths, widths)):
            # No normalisation on the first layer (Radford et al. 2016, §3).
            layer_norm = "none" if i == 0 else norm
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=layer_norm == "none"), norm_2d(layer_norm, w_out), activation(cfg.d_activation)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(widths[-1] * base**2, 1)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(-1)


@dataclass
class DCGAN(ModelConfig, name="dcgan"):
    """Radford et al. 2016: convolutional G and D; widths double at every halving of the resolution."""

    g_width: int = MISSING  # channels of G's last hidden layer
    d_width: int = MISSING  # channels of D's first layer
    g_norm: str = MISSING
    d_norm: str = MISSING  # auto: batch norm, or layer norm where the objective penalises D's per-sample gradients
    g_activation: str = MISSING
    d_activation: str = MISSING

    def check(self, sample_shape: Tuple[int, ...]) -> None:
        super().check(sample_shape)
        if len(sample_shape) != 3:
            raise UserError(
                f"model=dcgan needs image data (channels × height × width), but the data's samples have shape "
                f"{tuple(sample_shape)}; use model=mlp for vector data such as ring8, grid25 or gaussian1d."
            )
        channels, height, width = sample_shape
        base, stages = resolution_stages(height)
        if height != width or stages < 2:
            raise UserError(
                f"model=dcgan supports square images whose side halves at least twice down to 7 or less "
                f"(16, 28, 32, 64, 128, ...), but the data's images are {height}×{width}."
            )
        require_positive("model.g_width", self.g_width, "a positive number of channels")
        require_positive("model.d_width", self.d_width, "a positive number of channels")
        require_choice("model.g_norm", self.g_norm, NORMS)
        require_choice("model.d_norm", self.d_norm, NORMS + ("auto",))
        require_choice("model.g_activation", self.g_activation, ACTIVATIONS)
        require_choice("model.d_activation", self.d_activation, ACTIVATIONS)

    def generator(self, sample_shape, value_range, num_classes: int) -> Generator:
        return DCGANGenerator(self, sample_shape, value_range, num_classes)

    def discriminator(self, sample_shape, per_sample_d: bool) -> nn.Module:
        norm = ("layer" if per_sample_d else "batch") if self.d_norm == "auto" else self.d_norm
        return DCGANDiscriminator(self, sample_shape, norm)

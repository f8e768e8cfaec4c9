"""Radford et al. 2016 (DCGAN): strided (transposed) convolutions, sized from the image shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Tuple

from torch import Tensor, nn

from gan_lightning.models.configs import resolution_stages
from gan_lightning.models.generator import Generator, init_weights
from gan_lightning.models.layers import activation, norm_2d, output_activation

if TYPE_CHECKING:
    from gan_lightning.models.configs import DCGAN


class DCGANGenerator(Generator):
    def __init__(self, cfg: DCGAN, sample_shape: Tuple[int, ...], value_range, num_classes: int):
        super().__init__(cfg.latent_dim, cfg.latent_distribution, sample_shape, num_classes)
        channels, side, _ = sample_shape
        self.base, stages = resolution_stages(side)
        widths = [cfg.g_width * 2**i for i in reversed(range(stages))]  # e.g. [4w, 2w, w]
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
    def __init__(self, cfg: DCGAN, sample_shape: Tuple[int, ...], norm: str):
        super().__init__()
        channels, side, _ = sample_shape
        base, stages = resolution_stages(side)
        widths = [cfg.d_width * 2**i for i in range(stages)]  # e.g. [w, 2w, 4w]
        layers: List[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip([channels] + widths, widths)):
            # No normalisation on the first layer (Radford et al. 2016, §3).
            layer_norm = "none" if i == 0 else norm
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=layer_norm == "none"),
                norm_2d(layer_norm, w_out),
                activation(cfg.d_activation),
            ]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(widths[-1] * base**2, 1)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(-1)

"""Residual G and D of Gulrajani et al. 2017 and Miyato et al. 2018 (SNGAN), the standard CIFAR-10 baselines.

G: a linear map to 4×4, one up-sampling residual block per doubling of the side, then BN, ReLU, a 3×3
convolution and the output activation. D: residual blocks that halve the side down to 8×8 (the first
one "optimised", without a pre-activation), one more block at 8×8, ReLU, global sum pooling, a linear
output. Spectral normalisation of D is on by default (``model.d_spectral_norm``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.models.conditional import ConditionalBatchNorm2d
from gan_lightning.models.generator import Generator
from gan_lightning.models.layers import output_activation

if TYPE_CHECKING:
    from gan_lightning.models.configs import ResNet


class UpBlock(nn.Module):
    """BN → ReLU → ×2 nearest up-sampling → conv 3×3 → BN → ReLU → conv 3×3, plus an up-sampled 1×1 shortcut."""

    def __init__(self, channels_in: int, channels_out: int, num_classes: int):
        super().__init__()
        self.conditional = num_classes > 0
        norm = (lambda c: ConditionalBatchNorm2d(c, num_classes)) if self.conditional else nn.BatchNorm2d
        self.norm1, self.conv1 = norm(channels_in), nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.norm2, self.conv2 = norm(channels_out), nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.shortcut = nn.Conv2d(channels_in, channels_out, 1)

    def forward(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        def norm(layer, h):
            return layer(h, labels) if self.conditional else layer(h)

        h = F.interpolate(F.relu(norm(self.norm1, x)), scale_factor=2)
        h = self.conv2(F.relu(norm(self.norm2, self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    """(ReLU →) conv 3×3 → ReLU → conv 3×3 (→ 2×2 average pooling), plus a 1×1 shortcut (pooled alike)."""

    def __init__(self, channels_in: int, channels_out: int, downsample: bool, preactivation: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        self.shortcut = (
            nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out or downsample else nn.Identity()
        )
        self.downsample, self.preactivation = downsample, preactivation

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x)))
        if not self.downsample:
            return h + self.shortcut(x)
        # The first block pools before its 1×1 shortcut convolution, later blocks after it (as in SNGAN).
        shortcut = self.shortcut(F.avg_pool2d(x, 2)) if not self.preactivation else F.avg_pool2d(self.shortcut(x), 2)
        return F.avg_pool2d(h, 2) + shortcut


class ResNetGenerator(Generator):
    def __init__(self, cfg: ResNet, sample_shape: Tuple[int, ...], value_range, num_classes: int):
        super().__init__(cfg.latent_dim, cfg.latent_distribution, sample_shape, num_classes)
        channels, side, _ = sample_shape
        width = cfg.g_width
        self.project = nn.Linear(cfg.latent_dim, 4 * 4 * width)
        self.blocks = nn.ModuleList([UpBlock(width, width, num_classes) for _ in range(int(math.log2(side // 4)))])
        self.out = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, channels, 3, padding=1),
            output_activation(cfg.output, value_range),
        )
        self.width = width

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        h = self.project(z).view(len(z), self.width, 4, 4)
        for block in self.blocks:  # the label reaches G through conditional batch norm, not the input
            h = block(h, labels)
        return self.out(h)


class ResNetDiscriminator(nn.Module):
    def __init__(self, cfg: ResNet, sample_shape: Tuple[int, ...]):
        super().__init__()
        channels, side, _ = sample_shape
        width = cfg.d_width
        downs = int(math.log2(side // 8))  # halve down to 8×8
        blocks = [DownBlock(channels, width, downsample=True, preactivation=False)]
        blocks += [DownBlock(width, width, downsample=True, preactivation=True) for _ in range(downs - 1)]
        blocks += [DownBlock(width, width, downsample=False, preactivation=True) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 1)

    def features(self, x: Tensor) -> Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(-1)

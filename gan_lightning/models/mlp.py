"""Fully connected G and D, as in Goodfellow et al. 2014 (maxout and dropout in D are options)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, List, Optional, Tuple

from torch import Tensor, nn

from gan_lightning.models.generator import Generator
from gan_lightning.models.layers import Maxout, activation, norm_1d, output_activation

if TYPE_CHECKING:
    from gan_lightning.models.configs import MLP


class MLPGenerator(Generator):
    # gan_lightning.sweeps.vectorized: its own work (reshaping each row into a sample) is per row, so it runs unchanged on the
    # rows of several networks laid one network's after another (its layers are then their member-major forms).
    member_major_rows = True

    def __init__(self, cfg: MLP, sample_shape: Tuple[int, ...], value_range, num_classes: int):
        super().__init__(cfg.latent_dim, cfg.latent_distribution, sample_shape, num_classes)
        layers: List[nn.Module] = []
        width = cfg.latent_dim + num_classes
        for hidden in cfg.g_hidden:
            layers += [nn.Linear(width, hidden), norm_1d(cfg.g_norm, hidden), activation(cfg.g_activation)]
            width = hidden
        layers += [nn.Linear(width, math.prod(sample_shape)), output_activation(cfg.output, value_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.net(self.with_labels(z, labels)).view(z.shape[0], *self.sample_shape)


class Pack(nn.Module):
    """PacGAN (Lin et al. 2018): each run of ``m`` consecutive samples becomes one input of m·d features."""

    member_major_rows = True  # packs never straddle two networks' rows: each holds a multiple of m

    def __init__(self, m: int):
        super().__init__()
        self.m = m

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1).reshape(x.shape[0] // self.m, -1)

    def extra_repr(self) -> str:
        return f"m={self.m}"


class MLPDiscriminator(nn.Module):
    member_major_rows = True  # see MLPGenerator

    def __init__(self, cfg: MLP, sample_shape: Tuple[int, ...]):
        super().__init__()
        self.pack = cfg.pack  # samples per output: D returns len(x) / pack values
        layers: List[nn.Module] = [Pack(cfg.pack), nn.Dropout(cfg.d_dropout_input)]
        width = math.prod(sample_shape) * cfg.pack
        for i, hidden in enumerate(cfg.d_hidden):
            # No normalisation of the first layer, as in DCGAN's D: it would remove the data's own scale. No module
            # at all without normalisation, so parameter names (and checkpoints) stay those of the plain MLP.
            norm = [norm_1d(cfg.d_norm, hidden)] if i > 0 and cfg.d_norm != "none" else []
            if cfg.d_activation == "maxout":
                layers += [Maxout(width, hidden, cfg.d_maxout_pieces), *norm]
            else:
                layers += [nn.Linear(width, hidden), *norm, activation(cfg.d_activation)]
            layers.append(nn.Dropout(cfg.d_dropout))
            width = hidden
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(-1)

"""Small building blocks shared by the model families."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "tanh": nn.Tanh}[name]()


def output_activation(name: str, value_range: tuple[float, float] | None) -> nn.Module:
    """G's last non-linearity; ``auto`` matches the data's range: tanh for [−1, 1], sigmoid for [0, 1], none for unbounded data."""
    if name == "auto":
        name = {(-1.0, 1.0): "tanh", (0.0, 1.0): "sigmoid"}.get(
            tuple(map(float, value_range)) if value_range else None, "identity"
        )
    return {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "identity": nn.Identity()}[name]


def norm_1d(name: str, features: int) -> nn.Module:
    return {"none": nn.Identity, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}[name](features)


def norm_2d(name: str, channels: int) -> nn.Module:
    if name == "layer":
        return nn.GroupNorm(1, channels)  # layer norm over (C, H, W)
    return {"none": nn.Identity, "batch": nn.BatchNorm2d}[name](channels)


class Maxout(nn.Module):
    """Goodfellow et al. 2013: a linear map to ``units × pieces`` values, keeping the largest piece of each unit."""

    member_major_rows = True  # gan_lightning.sweeps.vectorized: its own work is per row

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(*x.shape[:-1], self.units, self.pieces).amax(dim=-1)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Miyato et al. 2018: spectral normalisation of every linear and convolutional weight."""
    for child in list(module.modules()):
        if isinstance(child, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            torch.nn.utils.parametrizations.spectral_norm(child)
    return module

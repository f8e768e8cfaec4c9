"""An exponential moving average of a network's weights (Yazıcı et al. 2019; Karras et al. 2018)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ExponentialMovingAverage(nn.Module):
    """A frozen copy of ``network`` whose parameters follow θ_ema ← d·θ_ema + (1 − d)·θ; buffers are copied."""

    def __init__(self, network: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.network = copy.deepcopy(network).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, network: nn.Module, decay: float | None = None) -> None:
        decay = self.decay if decay is None else decay
        torch._foreach_lerp_(list(self.network.parameters()), list(network.parameters()), 1.0 - decay)
        for mine, theirs in zip(self.network.buffers(), network.buffers()):
            mine.copy_(theirs)

    def train(self, mode: bool = True) -> ExponentialMovingAverage:
        return super().train(False)  # always evaluated as a finished network

    def forward(self, *args, **kwargs):
        return self.network(*args, **kwargs)

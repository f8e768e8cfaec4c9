"""Optimizers, configured separately for G and D."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, List, Optional

from omegaconf import MISSING

from gan_lightning.errors import invalid, require_positive
from gan_lightning.lazy import torch
from gan_lightning.registry import Registered


@dataclass
class OptimizerConfig(Registered, group="optimizer"):
    lr: float = MISSING
    weight_decay: float = MISSING
    grad_clip_norm: Optional[float] = MISSING  # clip the gradient's global L2 norm before each step; null: no clipping
    fused: bool = MISSING  # torch's fused implementation: one kernel updates every parameter
    # The learning rate moves linearly from lr at the first step to lr_final at trainer.max_steps; null: constant.
    lr_final: Optional[float] = MISSING

    @staticmethod
    def implementation(fused: bool) -> dict:
        """The keyword torch's optimizers take: fused, or PyTorch's default (a multi-tensor update on GPUs, a loop
        over the tensors on the CPU, 3-4 times slower than fused there)."""
        return {"fused": True} if fused else {}

    def fusable(self, mixed_precision: bool) -> bool:
        """Whether to build the fused implementation: as configured, but where gradients are clipped in mixed precision
        (Lightning's mixed-precision plugins refuse to clip the gradients of a fused optimizer, which unscales them itself)."""
        return self.fused and not (self.grad_clip_norm is not None and mixed_precision)

    def check(self, setting: str) -> None:
        require_positive(f"{setting}.lr", self.lr, "a positive learning rate")
        if self.weight_decay < 0:
            raise invalid(f"{setting}.weight_decay", self.weight_decay, "zero or positive")
        if self.grad_clip_norm is not None:
            require_positive(
                f"{setting}.grad_clip_norm", self.grad_clip_norm, "a positive norm, or null for no clipping"
            )
        if self.lr_final is not None and self.lr_final < 0:
            raise invalid(
                f"{setting}.lr_final",
                self.lr_final,
                "zero or positive (the learning rate at trainer.max_steps), or null for a constant one",
            )

    def build(
        self, params: Iterable[torch.nn.Parameter], fused: Optional[bool] = None, capturable: bool = False
    ) -> torch.optim.Optimizer:
        """The optimizer for ``params``; ``fused`` overrides the setting of the same name; ``capturable``: its steps
        can be captured in a CUDA graph."""
        raise NotImplementedError

    def check_capturable(self, setting: str) -> None:
        """Refuse what a step captured as a CUDA graph cannot follow (trainer.cuda_graph=true)."""
        if self.lr_final is not None:
            raise invalid(
                f"{setting}.lr_final", self.lr_final,
                "null with trainer.cuda_graph=true (the optimizer takes its learning rate as a host number, which a captured step fixes at capture)",
            )  # fmt: skip

    def adjust(self, optimizer: torch.optim.Optimizer, step: int, max_steps: int) -> None:
        """Set step-dependent hyperparameters before training step ``step`` of ``max_steps``."""
        if self.lr_final is not None:
            lr = self.lr + (self.lr_final - self.lr) * min(step / max_steps, 1.0)
            for group in optimizer.param_groups:
                group["lr"] = lr


@dataclass
class Adam(OptimizerConfig, name="adam"):
    """Kingma & Ba 2015; β1 = 0.5 as in Radford et al. 2016 is the usual GAN choice."""

    betas: List[float] = field(default_factory=lambda: MISSING)

    def check(self, setting: str) -> None:
        super().check(setting)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise invalid(f"{setting}.betas", list(self.betas), "two numbers in [0, 1)")

    def build(self, params, fused=None, capturable=False):
        implementation = self.implementation(self.fused if fused is None else fused)
        # capturable: the step count lives on the GPU, so a captured step's bias corrections follow it.
        return torch.optim.Adam(
            params,
            lr=self.lr,
            betas=tuple(self.betas),
            weight_decay=self.weight_decay,
            capturable=capturable,
            **implementation,
        )


@dataclass
class SGD(OptimizerConfig, name="sgd"):
    """Stochastic gradient descent with momentum, the optimizer of Goodfellow et al. 2014."""

    momentum: float = MISSING
    nesterov: bool = MISSING
    # Goodfellow et al. 2014 raise the momentum linearly from 0.5 to 0.7; null: constant momentum.
    momentum_final: Optional[float] = MISSING
    momentum_ramp_steps: int = MISSING

    def check(self, setting: str) -> None:
        super().check(setting)
        for name in ("momentum", "momentum_final"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise invalid(
                    f"{setting}.{name}", value, "a number in [0, 1)" + (", or null" if name == "momentum_final" else "")
                )
        require_positive(f"{setting}.momentum_ramp_steps", self.momentum_ramp_steps, "a positive number of steps")

    def adjust(self, optimizer, step: int, max_steps: int) -> None:
        super().adjust(optimizer, step, max_steps)
        if self.momentum_final is None:
            return
        progress = min(step / self.momentum_ramp_steps, 1.0)
        for group in optimizer.param_groups:
            group["momentum"] = self.momentum + (self.momentum_final - self.momentum) * progress

    def check_capturable(self, setting: str) -> None:
        super().check_capturable(setting)
        if self.momentum_final is not None:
            raise invalid(
                f"{setting}.momentum_final", self.momentum_final,
                "null with trainer.cuda_graph=true (torch's SGD takes its momentum as a host number, which a captured step fixes at capture)",
            )  # fmt: skip

    def build(self, params, fused=None, capturable=False):  # SGD keeps no step count: its steps capture as they are
        implementation = self.implementation(self.fused if fused is None else fused)
        return torch.optim.SGD(
            params,
            lr=self.lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay,
            **implementation,
        )


@dataclass
class OptimizerPair:
    """The ``optimizer`` config group: one optimizer for G and one for D."""

    g: OptimizerConfig = MISSING
    d: OptimizerConfig = MISSING

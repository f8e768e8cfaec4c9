"""GAN objectives: the losses of D and G computed from D's raw outputs.

D returns one unbounded value per sample: a logit of P(real) for classifier objectives, a score for
critics. Losses use softplus on logits, never log(sigmoid(x)), so saturated discriminators give finite
losses and exact gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.registry import Registered


@dataclass
class Objective(Registered, group="objective"):
    """Base class: how D and G are scored from D's outputs on real and generated samples."""

    # True when D's output is the logit of P(real); its mean sigmoid is then logged as d/real and d/fake
    # (1/2 at the equilibrium of Goodfellow et al. 2014). Critics log their raw score instead.
    classifier: ClassVar[bool] = True
    # True when the G loss looks at D's outputs on real data too (relativistic objectives).
    g_uses_real: ClassVar[bool] = False

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        raise NotImplementedError

    def d_penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Optional[Tensor]:
        """An extra D loss term that needs D itself (a gradient penalty); None when the objective has none."""
        return None

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Called after every D update (weight clipping)."""

    def d_output(self, out: Tensor) -> Tensor:
        """D's output as logged: a probability for classifiers, the raw score for critics."""
        return torch.sigmoid(out) if self.classifier else out


@dataclass
class Minimax(Objective, name="minimax"):
    """Goodfellow et al. 2014, "Generative Adversarial Nets": the min-max game, G minimises log(1 − D(G(z)))."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        # −[log D(x) + log(1 − D(G(z)))] with D = sigmoid(logit): −log σ(a) = softplus(−a), −log(1 − σ(a)) = softplus(a).
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        # log(1 − D(G(z))) = −softplus(a): its gradient σ(a) vanishes when D rejects the fakes.
        return -F.softplus(fake_out).mean()


@dataclass
class NonSaturating(Minimax, name="nonsaturating"):
    """Goodfellow et al. 2014, "Generative Adversarial Nets", §3: G maximises log D(G(z)) instead (same fixed point)."""

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        return F.softplus(-fake_out).mean()

"""GAN objectives: the losses of D and G computed from D's raw outputs.

D returns one unbounded value per sample: a logit of P(real) for classifier objectives, a score for
critics. Losses use softplus on logits, never log(sigmoid(x)), so saturated discriminators give finite
losses and exact gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, List, Optional

from omegaconf import MISSING

from gan_lightning.lazy import torch
from gan_lightning.registry import Registered

if TYPE_CHECKING:
    from torch import Tensor, nn

    from gan_lightning.training.losses import Penalty


@dataclass
class Objective(Registered, group="objective"):
    """Base class: how D and G are scored from D's outputs on real and generated samples."""

    # True when D's output is the logit of P(real); its mean sigmoid is then logged as d/real and d/fake
    # (1/2 at the equilibrium of Goodfellow et al. 2014). Critics log their raw score instead.
    classifier: ClassVar[bool] = True
    # True when the G loss looks at D's outputs on real data too (relativistic objectives).
    g_uses_real: ClassVar[bool] = False
    # True when a loss term needs D's gradient at single samples, which batch norm in D would mix.
    per_sample_d: ClassVar[bool] = False

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        raise NotImplementedError

    def penalties(self) -> List[Penalty]:
        """The terms of D's loss that need D itself (a gradient penalty) which the objective defines."""
        return []

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Called after every D update (weight clipping)."""

    def d_output(self, out: Tensor) -> Tensor:
        """D's output as logged: a probability for classifiers, the raw score for critics."""
        return torch.sigmoid(out) if self.classifier else out

    def real_side(self, out: Tensor) -> Tensor:
        """D's raw output less its decision boundary: positive where D takes a sample for real (the sign behind the
        overfitting heuristic r_t = E[sign(D(x_real))] of Karras et al. 2020). The boundary is 0 for logits, critics
        and hinge; least squares overrides it."""
        return out


@dataclass
class Minimax(Objective, name="minimax"):
    """Goodfellow et al. 2014, "Generative Adversarial Nets": the min-max game, G minimises log(1 − D(G(z)))."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        # −[log D(x) + log(1 − D(G(z)))] with D = sigmoid(logit): −log σ(a) = softplus(−a), −log(1 − σ(a)) = softplus(a).
        return torch.nn.functional.softplus(-real_out).mean() + torch.nn.functional.softplus(fake_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        # log(1 − D(G(z))) = −softplus(a): its gradient σ(a) vanishes when D rejects the fakes.
        return -torch.nn.functional.softplus(fake_out).mean()


@dataclass
class NonSaturating(Minimax, name="nonsaturating"):
    """Goodfellow et al. 2014, "Generative Adversarial Nets", §3: G maximises log D(G(z)) instead (same fixed point)."""

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        return torch.nn.functional.softplus(-fake_out).mean()


@dataclass
class CriticObjective(Objective):
    """The critic losses of Arjovsky et al. 2017: D minimises E D(G(z)) − E D(x), G minimises −E D(G(z))."""

    classifier: ClassVar[bool] = False

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        return -fake_out.mean()


@dataclass
class Wasserstein(CriticObjective, name="wasserstein"):
    """Arjovsky et al. 2017, "Wasserstein GAN": a critic with clipped weights estimates the Earth-Mover distance."""

    clip: float = MISSING  # every critic weight is clipped to [−clip, clip] after each update

    def after_d_step(self, discriminator: nn.Module) -> None:
        with torch.no_grad():
            for p in discriminator.parameters():
                p.clamp_(-self.clip, self.clip)


@dataclass
class WGANGP(CriticObjective, name="wgan_gp"):
    """Gulrajani et al. 2017, "Improved Training of Wasserstein GANs": a gradient penalty on interpolates replaces clipping."""

    gp_weight: float = MISSING  # λ
    per_sample_d: ClassVar[bool] = True

    def penalties(self) -> List[Penalty]:
        from gan_lightning.training.losses import InterpolateGradientPenalty

        return [InterpolateGradientPenalty(self.gp_weight)]


@dataclass
class Hinge(Objective, name="hinge"):
    """Lim & Ye 2017, "Geometric GAN" (as used by Miyato et al. 2018): hinge loss for D, −D(G(z)) for G."""

    classifier: ClassVar[bool] = False

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return torch.nn.functional.relu(1 - real_out).mean() + torch.nn.functional.relu(1 + fake_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        return -fake_out.mean()


@dataclass
class LeastSquares(Objective, name="least_squares"):
    """Mao et al. 2017, "Least Squares Generative Adversarial Networks": D regresses labels a (fake) and b (real); G targets c."""

    classifier: ClassVar[bool] = False
    fake_label: float = MISSING  # a
    real_label: float = MISSING  # b
    g_target: float = MISSING  # c

    def real_side(self, out: Tensor) -> Tensor:
        return out - (self.real_label + self.fake_label) / 2  # halfway between D's two targets

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return 0.5 * ((real_out - self.real_label).pow(2).mean() + (fake_out - self.fake_label).pow(2).mean())

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        return 0.5 * (fake_out - self.g_target).pow(2).mean()


@dataclass
class Relativistic(Objective, name="relativistic"):
    """Jolicoeur-Martineau 2018, "The relativistic discriminator": relativistic average GAN (RaSGAN)."""

    classifier: ClassVar[bool] = False
    g_uses_real: ClassVar[bool] = True

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        # D(x_r) = σ(C(x_r) − E C(x_f)) should be 1 and D(x_f) = σ(C(x_f) − E C(x_r)) should be 0.
        return (
            torch.nn.functional.softplus(-(real_out - fake_out.mean())).mean()
            + torch.nn.functional.softplus(fake_out - real_out.mean()).mean()
        )

    def g_loss(self, fake_out: Tensor, real_out: Optional[Tensor] = None) -> Tensor:
        # The roles swap: fakes should look more real than the average real sample, and reals less.
        return (
            torch.nn.functional.softplus(-(fake_out - real_out.mean())).mean()
            + torch.nn.functional.softplus(real_out - fake_out.mean()).mean()
        )

"""D's and G's losses, composed in one place from D's outputs.

A loss is the objective's adversarial term, plus the auxiliary classifier's term for an AC-GAN D, plus, for
D, its penalties: weighted terms that need D itself (gradient penalties), each applied at its own interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lightning.errors import UserError


def input_gradients(outputs: Tensor, inputs: Tensor) -> Tensor:
    """∂(Σ outputs)/∂inputs, kept in the graph so a penalty on it trains D; one vector per D output (shape
    ``outputs.shape + (-1,)``): the gradient with respect to that output's whole input (a pack of consecutive
    samples for a packing D). Outputs of shape (batch, members) come from S networks side by side
    (gan_lightning.sweeps.vectorized), whose inputs are (batch, members, ...)."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    packs = grad.unflatten(0, (len(outputs), -1))  # (outputs, pack, [members,] ...)
    return packs.movedim(1, outputs.dim()).flatten(outputs.dim())


def score(discriminator: nn.Module, x: Tensor, labels: Optional[Tensor], class_logits: bool = False):
    """D's output for ``x``; a conditional D also reads the labels. With ``class_logits``, the pair (output, logits
    of the AC-GAN classifier)."""
    if labels is None:
        return discriminator(x)
    return discriminator(x, labels, class_logits=True) if class_logits else discriminator(x, labels)


@dataclass
class Penalty:
    """A term of D's loss that needs D itself. Lazy regularisation (Karras et al. 2020): applied every
    ``interval`` D updates with ``interval`` times its weight, so its average weight stays ``weight``."""

    weight: float
    interval: int = 1
    # The penalty differentiates D at the real samples: they must require gradients before D's forward pass.
    differentiates_real: ClassVar[bool] = False

    def due(self, update_index: int) -> bool:
        return update_index % self.interval == 0

    def value(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, real_out: Tensor, layout: Layout
    ) -> Tensor:
        """The unweighted term, averaged over the batch (dimension 0). ``discriminator`` maps samples to D's outputs
        (with the real samples' labels, for a conditional D); ``fake`` may carry G's graph; ``layout`` draws
        random numbers for the batch."""
        raise NotImplementedError

    def weighted(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, real_out: Tensor, layout: Layout
    ) -> Tensor:
        return self.weight * self.value(discriminator, real, fake, real_out, layout) * self.interval


def r1_penalty(real_out: Tensor, real: Tensor) -> Tensor:
    """E‖∇_x D(x)‖² on real data (``real`` must require grad before D's forward)."""
    return input_gradients(real_out, real).pow(2).sum(dim=-1).mean(dim=0)


@dataclass
class R1(Penalty):
    """Mescheder et al. 2018, "Which training methods for GANs do actually converge?": γ/2·E‖∇D(x)‖² on real
    data (``weight`` is γ/2)."""

    differentiates_real: ClassVar[bool] = True

    def value(self, discriminator, real, fake, real_out, layout):
        return r1_penalty(real_out, real)


@dataclass
class InterpolateGradientPenalty(Penalty):
    """Gulrajani et al. 2017, "Improved Training of Wasserstein GANs": E(‖∇D(x̂)‖ − 1)² at random interpolates x̂
    between a real and a fake sample (scored with the real sample's label)."""

    def value(self, discriminator, real, fake, real_out, layout):
        eps = layout.uniform_per_sample(real)
        mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        norms = input_gradients(discriminator(mixed), mixed).norm(dim=-1)
        return (norms - 1).pow(2).mean(dim=0)


class Layout:
    """How the tensors of a training step hold their samples: one run's, (batch, ...). gan_lightning.sweeps.vectorized
    lays S runs side by side, (batch, members, ...), with a loss per member."""

    def objective_term(self, loss: Callable[..., Tensor], *outputs: Optional[Tensor]) -> Tensor:
        """An objective's loss of D's outputs (None where a loss takes no such output)."""
        return loss(*outputs)

    def uniform_per_sample(self, like: Tensor) -> Tensor:
        """One U[0, 1) number per sample of ``like``, shaped to broadcast over it."""
        return torch.rand(len(like), *[1] * (like.dim() - 1), device=like.device, dtype=like.dtype)


@dataclass
class Scores:
    """D's outputs of one forward pass: over the real then the fake samples, or (``real`` None) the fakes alone."""

    real: Optional[Tensor]
    fake: Tensor
    class_logits: Optional[Tensor] = None  # AC-GAN: the classifier's logits for the same samples, in the same order


def batch_coupled(discriminator: nn.Module) -> bool:
    """Whether D's output for a sample depends on the rest of its batch (batch norm). Networks trained side by
    side (gan_lightning.sweeps.vectorized) show their common ``architecture``."""
    architecture = getattr(discriminator, "architecture", discriminator)
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in architecture.modules())


class Losses:
    """D's and G's losses for one objective (gan_lightning/training/objectives.py), the penalties and, for an AC-GAN D, the
    auxiliary classifier. ``separate_batches``: D sees real and fake samples in forward passes of their own (a D
    with batch norm then normalises each minibatch by its own statistics); otherwise in one pass over both."""

    def __init__(
        self,
        objective: Any,
        penalties: List[Penalty],
        auxiliary_classifier: bool,
        separate_batches: bool = False,
        layout: Optional[Layout] = None,
        augment: Optional[Callable[[Tensor], Tensor]] = None,
    ):
        self.objective, self.penalties, self.auxiliary_classifier = objective, penalties, auxiliary_classifier
        self.separate_batches = separate_batches
        self.layout = layout or Layout()
        # Every image D scores, real or generated, in D's update and in G's, goes through it (None: as it is).
        self.augment = augment
        # The augmentation again when it adapts its strength to D's outputs (ADA): it observes D's scores of the reals,
        # and its state is logged and kept in the checkpoint. None otherwise.
        self.adaptive = augment if getattr(augment, "adapts", False) else None
        # Whether G's update needs D's outputs on real samples too: a relativistic objective's G loss reads them, and a
        # D that normalises real and fake samples together must see both (set by ``of``).
        self.g_scores_real = getattr(objective, "g_uses_real", False)

    @classmethod
    def of(
        cls,
        objective: Any,
        discriminator: nn.Module,
        r1_gamma: float,
        r1_interval: int,
        d_batch_stats: str,
        layout: Optional[Layout],
        augment: Optional[Callable[[Tensor], Tensor]] = None,
    ) -> Losses:
        """The losses a GAN with ``discriminator`` trains with: the objective's, its penalties, lazy R1 (every
        r1_interval-th D update, weighted by r1_interval) and, for an AC-GAN D, the auxiliary classifier's."""
        from gan_lightning.models.conditional import ConditionalDiscriminator

        coupled = batch_coupled(discriminator)
        if objective.per_sample_d and coupled:
            raise UserError(
                f"objective={type(objective).__name__} penalises D's gradient at single samples, but D uses batch norm, "
                "which mixes the samples of a batch: use model.d_norm=layer or model.d_norm=none."
            )
        auxiliary_classifier = isinstance(discriminator, ConditionalDiscriminator) and discriminator.mode == "acgan"
        r1 = [R1(r1_gamma / 2, r1_interval)] if r1_gamma > 0 else []
        separate_batches = coupled and d_batch_stats == "separate"
        losses = cls(objective, [*objective.penalties(), *r1], auxiliary_classifier, separate_batches, layout, augment)
        losses.g_scores_real = objective.g_uses_real or (coupled and not separate_batches)
        return losses

    def forward(self, discriminator: nn.Module, x: Tensor, labels: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        out = score(discriminator, x, labels, class_logits=self.auxiliary_classifier)
        return out if self.auxiliary_classifier else (out, None)

    def score(
        self,
        discriminator: nn.Module,
        real: Optional[Tensor],
        fake: Tensor,
        labels: Optional[Tensor],
        fake_labels: Optional[Tensor],
    ) -> Scores:
        """D's outputs for the real and the fake batch (the fakes alone when ``real`` is None), augmented as D sees
        them."""
        return self.score_seen(discriminator, self.seen(real), self.seen(fake), labels, fake_labels)

    def seen(self, x: Optional[Tensor]) -> Optional[Tensor]:
        """``x`` as D sees it: through the augmentation, if any."""
        return x if x is None or self.augment is None else self.augment(x)

    def score_seen(self, discriminator: nn.Module, real: Optional[Tensor], fake: Tensor, labels: Optional[Tensor],
                   fake_labels: Optional[Tensor]) -> Scores:  # fmt: skip
        """``score`` of images already as D sees them (augmented where augmentation is on)."""
        if real is None:
            return Scores(None, *self.forward(discriminator, fake, fake_labels))
        if self.separate_batches:
            (real_out, real_logits), (fake_out, fake_logits) = (
                self.forward(discriminator, real, labels),
                self.forward(discriminator, fake, fake_labels),
            )
            return Scores(real_out, fake_out, None if real_logits is None else torch.cat([real_logits, fake_logits]))
        out, logits = self.forward(
            discriminator, torch.cat([real, fake]), None if fake_labels is None else torch.cat([labels, fake_labels])
        )
        # Halves, not len(real): a packing D (PacGAN) returns one output per pack of samples.
        real_out, fake_out = out.chunk(2)
        return Scores(real_out, fake_out, logits)

    def discriminator(
        self, discriminator: nn.Module, real: Tensor, labels: Optional[Tensor], fake: Tensor, fake_labels: Optional[Tensor],
        update_index: int, penalised: nn.Module,
    ) -> Tuple[Tensor, Scores]:  # fmt: skip
        """D's loss on a real and a fake batch, with the penalties due at D update ``update_index`` (computed
        through ``penalised``: D outside any DDP wrapper), and D's outputs."""
        due = [penalty for penalty in self.penalties if penalty.due(update_index)]
        if any(penalty.differentiates_real for penalty in due):
            # R1's gradient is taken with respect to the reals before the augmentation, through it (as in
            # stylegan2-ada's loss): the penalty smooths D on the data, not on its augmented copies.
            real = real.detach().requires_grad_(True)
        raw_real, real, fake = real, self.seen(real), self.seen(fake)  # D's outputs, other penalties: at what D saw
        scores = self.score_seen(discriminator, real, fake, labels, fake_labels)
        if self.adaptive is not None:  # ADA reads D's outputs on the reals it augmented
            self.adaptive.observe(self.objective.real_side(scores.real))
        loss = self.layout.objective_term(self.objective.d_loss, scores.real, scores.fake)
        if scores.class_logits is not None:  # AC-GAN: D also learns to name the class of real and generated samples
            loss = loss + F.cross_entropy(scores.class_logits, torch.cat([labels, fake_labels]))
        for penalty in due:
            at = raw_real if penalty.differentiates_real else real
            loss = loss + penalty.weighted(lambda x: score(penalised, x, labels), at, fake, scores.real, self.layout)
        return loss, scores

    def generator(self, scores: Scores, fake_labels: Optional[Tensor]) -> Tensor:
        """G's loss from D's outputs of its latest forward pass."""
        loss = self.layout.objective_term(self.objective.g_loss, scores.fake, scores.real)
        if scores.class_logits is not None:  # AC-GAN: G wants its samples classified as the class it was asked for
            logits = scores.class_logits
            loss = loss + F.cross_entropy(logits if scores.real is None else logits[len(logits) // 2 :], fake_labels)
        return loss

"""The ``model`` config group: each family's settings and their checks, sized from the data's sample shape.

The networks themselves are built by ``ModelConfig.build`` from the family's module (``dcgan``, ``mlp``, ``resnet``),
imported then: composing and checking a config needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Tuple

from omegaconf import MISSING

from gan_lightning.errors import UserError, invalid, require_choice, require_positive
from gan_lightning.registry import Registered, implementation

if TYPE_CHECKING:
    from torch import nn

    from gan_lightning.models.generator import Generator

LATENT_DISTRIBUTIONS = ("normal", "uniform")
# How a D with batch statistics (batch norm) sees real and fake samples: in separate minibatches (the DCGAN
# reference code, Lightning's GAN tutorial, common practice), or together in one minibatch (see docs/objectives.md).
D_BATCH_STATS = ("separate", "joint")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh")
OUTPUTS = ("auto", "tanh", "sigmoid", "identity")
NORMS = ("none", "batch", "layer")
COND_D = ("projection", "acgan")


def resolution_stages(side: int) -> Tuple[int, int]:
    """(base side, number of ×2 stages): 28 → (7, 2), 32 → (4, 3), 64 → (4, 4)."""
    stages = 0
    while side % 2 == 0 and side > 7:
        side //= 2
        stages += 1
    return side, stages


def supported_side(side: int) -> bool:
    """Sides 4·2^k with k ≥ 2: 16, 32, 64, 128, ..."""
    return side >= 16 and side % 4 == 0 and (side // 4) & (side // 4 - 1) == 0


@dataclass
class ModelConfig(Registered, group="model"):
    """Settings every model family shares."""

    latent_dim: int = MISSING
    latent_distribution: str = MISSING
    output: str = MISSING  # G's output activation; "auto" follows the data's value range
    d_spectral_norm: bool = MISSING
    conditional: bool = MISSING  # class-conditional G and D, for labelled data
    cond_d: str = MISSING  # projection (Miyato & Koyama 2018) | acgan (Odena et al. 2017)
    d_batch_stats: str = MISSING  # separate | joint: the minibatches a D with batch norm normalises over

    @property
    def d_pack(self) -> int:
        """Samples per D output: more than 1 when D scores packs of samples (PacGAN, Lin et al. 2018)."""
        return 1

    def check(self, sample_shape: Tuple[int, ...]) -> None:
        """Raise a UserError when these settings cannot model data of ``sample_shape``."""
        require_positive("model.latent_dim", self.latent_dim, "a positive number of latent dimensions")
        require_choice("model.latent_distribution", self.latent_distribution, LATENT_DISTRIBUTIONS)
        require_choice("model.output", self.output, OUTPUTS)
        require_choice("model.cond_d", self.cond_d, COND_D)
        require_choice("model.d_batch_stats", self.d_batch_stats, D_BATCH_STATS)

    def build(
        self,
        sample_shape: Tuple[int, ...],
        value_range: Optional[Tuple[float, float]],
        per_sample_d: bool = False,
        num_classes: int = 0,
    ) -> Tuple[Generator, nn.Module]:
        """G and D for data of ``sample_shape``; ``per_sample_d``: the objective needs D's gradient at single samples;
        ``num_classes``: the number of labels of the data (0 when it has none)."""
        self.check(sample_shape)
        if self.conditional and num_classes < 2:
            raise UserError("model.conditional=true needs labelled data with at least two classes (fashion_mnist, mnist, cifar10, "
                            "ring8, grid25, or an image_folder with class sub-folders).")  # fmt: skip
        from gan_lightning.models.conditional import ConditionalDiscriminator
        from gan_lightning.models.layers import apply_spectral_norm

        classes = num_classes if self.conditional else 0
        generator = self.generator(tuple(sample_shape), value_range, classes)
        discriminator = self.discriminator(tuple(sample_shape), per_sample_d)
        if classes:
            discriminator = ConditionalDiscriminator(discriminator, classes, self.cond_d)
        if self.d_spectral_norm:
            apply_spectral_norm(discriminator)
        return generator, discriminator

    def generator(self, sample_shape: Tuple[int, ...], value_range, num_classes: int) -> Generator:
        raise NotImplementedError

    def discriminator(self, sample_shape: Tuple[int, ...], per_sample_d: bool) -> nn.Module:
        raise NotImplementedError


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
        return implementation("gan_lightning.models.dcgan.DCGANGenerator")(self, sample_shape, value_range, num_classes)

    def discriminator(self, sample_shape, per_sample_d: bool) -> nn.Module:
        norm = ("layer" if per_sample_d else "batch") if self.d_norm == "auto" else self.d_norm
        return implementation("gan_lightning.models.dcgan.DCGANDiscriminator")(self, sample_shape, norm)


@dataclass
class MLP(ModelConfig, name="mlp"):
    """Goodfellow et al. 2014: fully connected generator and discriminator for vectors or flattened images."""

    g_hidden: List[int] = field(default_factory=lambda: MISSING)
    g_activation: str = MISSING
    g_norm: str = MISSING
    d_hidden: List[int] = field(default_factory=lambda: MISSING)
    d_activation: str = MISSING  # an activation name, or "maxout"
    d_norm: str = MISSING  # none | batch | layer, after every hidden layer but the first
    d_maxout_pieces: int = MISSING
    d_dropout_input: float = MISSING  # probability of dropping an input unit
    d_dropout: float = MISSING  # probability of dropping a hidden unit
    pack: int = MISSING  # PacGAN: D scores packs of this many samples (1: one sample per output)

    @property
    def d_pack(self) -> int:
        return self.pack

    def check(self, sample_shape: Tuple[int, ...]) -> None:
        super().check(sample_shape)
        for setting, widths in (("model.g_hidden", self.g_hidden), ("model.d_hidden", self.d_hidden)):
            if not widths or min(widths) < 1:
                raise invalid(setting, list(widths), "a non-empty list of positive layer widths")
        require_choice("model.g_activation", self.g_activation, ACTIVATIONS)
        require_choice("model.d_activation", self.d_activation, ACTIVATIONS + ("maxout",))
        require_choice("model.g_norm", self.g_norm, NORMS)
        require_choice("model.d_norm", self.d_norm, NORMS)
        require_positive("model.d_maxout_pieces", self.d_maxout_pieces, "at least 1 piece per maxout unit")
        for setting, p in (("model.d_dropout_input", self.d_dropout_input), ("model.d_dropout", self.d_dropout)):
            if not 0.0 <= p < 1.0:
                raise invalid(setting, p, "a drop probability in [0, 1)")
        require_positive("model.pack", self.pack, "a positive number of samples per D input (1: no packing)")
        if self.pack > 1 and self.conditional:
            raise invalid(
                "model.pack",
                self.pack,
                "1 with model.conditional=true (a conditional D scores each sample with its own label)",
            )

    def generator(self, sample_shape, value_range, num_classes: int) -> Generator:
        return implementation("gan_lightning.models.mlp.MLPGenerator")(self, sample_shape, value_range, num_classes)

    def discriminator(self, sample_shape, per_sample_d: bool) -> nn.Module:
        return implementation("gan_lightning.models.mlp.MLPDiscriminator")(self, sample_shape)


@dataclass
class ResNet(ModelConfig, name="resnet"):
    """Gulrajani et al. 2017; Miyato et al. 2018: residual G and D for 32×32 and larger images."""

    g_width: int = MISSING  # channels of every G block (SNGAN CIFAR-10: 256)
    d_width: int = MISSING  # channels of every D block (SNGAN CIFAR-10: 128)

    def check(self, sample_shape: Tuple[int, ...]) -> None:
        super().check(sample_shape)
        if len(sample_shape) != 3 or sample_shape[1] != sample_shape[2] or not supported_side(sample_shape[1]):
            raise UserError(
                f"model=resnet supports square images of side 16, 32, 64, 128, ... (4·2^k), but the data's samples have shape "
                f"{tuple(sample_shape)}; set data.image_size to one of those, or use model=dcgan or model=mlp."
            )
        require_positive("model.g_width", self.g_width, "a positive number of channels")
        require_positive("model.d_width", self.d_width, "a positive number of channels")

    def generator(self, sample_shape, value_range, num_classes: int) -> Generator:
        return implementation("gan_lightning.models.resnet.ResNetGenerator")(
            self, sample_shape, value_range, num_classes
        )

    def discriminator(self, sample_shape, per_sample_d: bool) -> nn.Module:
        return implementation("gan_lightning.models.resnet.ResNetDiscriminator")(self, sample_shape)

"""Class-conditional GANs: labels into G, and a projection or auxiliary-classifier discriminator.

G receives the label by concatenation to z (Mirza & Osindero 2014) in the MLP and DCGAN families and
through conditional batch norm in the ResNet family (de Vries et al. 2017; Miyato & Koyama 2018).
D is any family's discriminator, split into ``features`` and a linear ``head``, wrapped here.
"""

from __future__ import annotations

from typing import Tuple, Union

from torch import Tensor, nn


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine map; a per-class gain and bias take its place."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class ConditionalDiscriminator(nn.Module):
    """Adds the label to an unconditional D.

    ``projection`` (Miyato & Koyama 2018): D(x, y) = head(φ(x)) + ⟨embed(y), φ(x)⟩.
    ``acgan`` (Odena et al. 2017): D(x) as before plus a classifier of φ(x), whose logits D returns beside
    its output when asked (``class_logits=True``), for the auxiliary classification loss.
    """

    def __init__(self, base: nn.Module, num_classes: int, mode: str):
        super().__init__()
        self.base, self.mode, self.num_classes = base, mode, num_classes
        width = base.head.in_features
        if mode == "projection":
            self.embed = nn.Embedding(num_classes, width)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        else:
            self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, labels: Tensor, class_logits: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        features = self.base.features(x)
        out = self.base.head(features).squeeze(-1)
        if self.mode == "projection":
            return out + (self.embed(labels) * features).sum(dim=1)
        return (out, self.classifier(features)) if class_logits else out

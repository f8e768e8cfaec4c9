"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): every image D sees,
real or generated, in D's update and in G's, goes through the same random differentiable transforms, so D cannot
memorise the few real images and G's gradients pass through the transforms to G.

The three policies of the paper, on images in [−1, 1] (N, C, H, W), each drawn per image:
- ``color``: brightness + U(−0.5, 0.5), saturation × U(0, 2) about the image's channel mean, contrast × U(0.5, 1.5)
  about its overall mean;
- ``translation``: an integer shift of up to 1/8 of each side, the uncovered border zero;
- ``cutout``: a square of half the side set to zero, at a uniformly drawn place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Sequence

from gan_lightning.lazy import torch  # the config group reads this module's names without torch

if TYPE_CHECKING:
    from torch import Tensor


def uniform(x: Tensor, low: float, high: float) -> Tensor:
    """One U(low, high) number per image of ``x``, shaped (N, 1, 1, 1)."""
    return torch.rand(len(x), 1, 1, 1, dtype=x.dtype, device=x.device) * (high - low) + low


def color(x: Tensor) -> Tensor:
    x = x + uniform(x, -0.5, 0.5)
    channel_mean = x.mean(dim=1, keepdim=True)
    x = (x - channel_mean) * uniform(x, 0.0, 2.0) + channel_mean
    image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - image_mean) * uniform(x, 0.5, 1.5) + image_mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Each image shifted by whole pixels (up to ``ratio`` of its side in each direction), zeros coming in."""
    n, _, height, width = x.shape
    dy, dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-dy, dy + 1, (n, 1, 1), device=x.device)
    shift_x = torch.randint(-dx, dx + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1) + shift_y + 1  # +1: into the padded image
    cols = torch.arange(width, device=x.device).view(1, 1, width) + shift_x + 1
    rows, cols = rows.clamp(0, height + 1), cols.clamp(0, width + 1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # a ring of zeros: every index outside the image reads one
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Each image with a square of ``ratio`` of its side zeroed, its centre drawn uniformly (it may leave the image)."""
    n, _, height, width = x.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_y = torch.randint(0, height + (1 - size_y % 2), (n, 1, 1), device=x.device)
    centre_x = torch.randint(0, width + (1 - size_x % 2), (n, 1, 1), device=x.device)
    top, left = centre_y - size_y // 2, centre_x - size_x // 2
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: Dict[str, Callable[[Tensor], Tensor]] = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment:
    """The chosen policies, in the paper's order, applied to every image (real and generated alike)."""

    adapts = False

    def __init__(self, policy: Sequence[str]):
        self.policy = [POLICIES[name] for name in POLICIES if name in policy]

    def __call__(self, x: Tensor) -> Tensor:
        for transform in self.policy:
            x = transform(x)
        return x.contiguous()

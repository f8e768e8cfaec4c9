"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data"): every image D sees, real or generated, goes through a pipeline of transforms, each applied to an image with
probability p; p follows D's overfitting.

The pipeline (the paper's "bgc"), on images in [−1, 1] (N, C, H, W), each transform drawn per image:
- geometric, composed into one affine map and resampled as the reference does (``resample``: reflection padding,
  2× upsampling through the Symlet-6 filter, a bilinear sample, filtering back down): horizontal flip,
  rotation by a multiple of 90°, integer translation (up to 1/8 of the side), isotropic scaling (log₂-normal, σ 0.2),
  rotation (uniform angle; before and after the anisotropic scaling, each with 1 − √(1 − p) so that one of them
  happens with p), anisotropic scaling (log₂-normal, σ 0.2), fractional translation (normal, σ 1/8 of the side);
- colour, composed into one affine colour map: brightness (+ normal, σ 0.2), contrast (× log₂-normal, σ 0.5), luma
  flip, hue rotation (uniform angle) and saturation (× log₂-normal, σ 1) about the luma axis; for grey-scale images
  the map's action on grey (brightness, contrast, luma flip).

p is adjusted every ``interval`` steps from r_t = E[sign(D(x_real))] over those steps (D's raw output on the
augmented reals, its sign taken about the objective's decision boundary): up when r_t is above the target (D is
too sure of the reals, the sign of overfitting), down when below, by as much as takes p from 0 to 1 in
``speed_images`` real images. p and the running sum behind r_t are in the checkpoint, so a resumed run continues.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Sequence

from gan_lightning.lazy import torch  # the config group reads this module's names without torch

if TYPE_CHECKING:
    from torch import Tensor

GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
TRANSFORMS = GEOMETRIC + COLOUR


def chosen(n: int, probability: float, device) -> Tensor:
    """Which of ``n`` images a transform applies to: each with ``probability``, as 0./1. of shape (n,)."""
    return (torch.rand(n, device=device) < probability).float()


def eye(n: int, size: int, device) -> Tensor:
    return torch.eye(size, device=device).repeat(n, 1, 1)


def translate(tx: Tensor, ty: Tensor) -> Tensor:
    m = eye(len(tx), 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale(sx: Tensor, sy: Tensor) -> Tensor:
    m = eye(len(sx), 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate(angle: Tensor) -> Tensor:
    m = eye(len(angle), 3, angle.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    return m


class AdaptiveAugment:
    """The pipeline at probability ``p``, and the controller that adjusts p from D's outputs on reals."""

    adapts = True

    def __init__(self, transforms: Sequence[str] = TRANSFORMS, p: float = 0.0, target: float = 0.6, interval: int = 4,
                 speed_images: int = 500_000):  # fmt: skip
        self.transforms = set(transforms)
        self.p, self.target, self.interval, self.speed_images = float(p), target, interval, speed_images
        self.sign_sum = torch.zeros(())  # Σ sign(D(x_real)) since the last adjustment, on D's device
        self.sign_count = 0
        self.r_t = float("nan")  # the heuristic at the latest adjustment

    # ------------------------------------------------------------------ the pipeline

    def __call__(self, x: Tensor) -> Tensor:
        if self.p <= 0:
            return x  # nothing drawn, nothing resampled: exactly the images
        if self.transforms & set(GEOMETRIC):
            x = self.geometric(x)
        if self.transforms & set(COLOUR):
            x = self.colour(x)
        return x

    def uses(self, name: str, n: int, device, probability: float = -1.0) -> Tensor:
        """The 0./1. mask of the images ``name`` applies to (none where the pipeline leaves it out)."""
        if name not in self.transforms:
            return torch.zeros(n, device=device)
        return chosen(n, self.p if probability < 0 else probability, device)

    def geometric(self, x: Tensor) -> Tensor:
        n, _, height, width = x.shape
        device, p_rot = x.device, 1 - math.sqrt(1 - min(self.p, 1.0))
        m = eye(n, 3, device)  # maps an output pixel's position (in pixels from the centre) to where it samples
        flip = self.uses("xflip", n, device) * torch.randint(0, 2, (n,), device=device)
        m = m @ scale(1 - 2 * flip, torch.ones(n, device=device))
        quarter = self.uses("rotate90", n, device) * torch.randint(0, 4, (n,), device=device)
        m = m @ rotate(quarter * (math.pi / 2))
        shift = (torch.rand(n, 2, device=device) * 2 - 1) * 0.125 * self.uses("xint", n, device)[:, None]
        m = m @ translate((shift[:, 0] * width).round(), (shift[:, 1] * height).round())
        m = m @ scale(*[torch.exp2(torch.randn(n, device=device) * 0.2 * self.uses("scale", n, device))] * 2)
        m = m @ rotate((torch.rand(n, device=device) * 2 - 1) * math.pi * self.uses("rotate", n, device, p_rot))
        stretch = torch.exp2(torch.randn(n, device=device) * 0.2 * self.uses("aniso", n, device))
        m = m @ scale(stretch, 1 / stretch)
        m = m @ rotate((torch.rand(n, device=device) * 2 - 1) * math.pi * self.uses("rotate", n, device, p_rot))
        fraction = torch.randn(n, 2, device=device) * 0.125 * self.uses("xfrac", n, device)[:, None]
        m = m @ translate(fraction[:, 0] * width, fraction[:, 1] * height)
        return resample(x, m)

    def colour(self, x: Tensor) -> Tensor:
        n, channels = x.shape[:2]
        device = x.device
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        axis = torch.outer(luma, luma)  # projection onto the luma axis (homogeneous 4 × 4)
        c = eye(n, 4, device)
        brightness = torch.randn(n, device=device) * 0.2 * self.uses("brightness", n, device)
        shift = eye(n, 4, device)
        shift[:, :3, 3] = brightness[:, None]
        c = shift @ c
        contrast = torch.exp2(torch.randn(n, device=device) * 0.5 * self.uses("contrast", n, device))
        c = torch.diag_embed(torch.stack([contrast] * 3 + [torch.ones(n, device=device)], dim=1)) @ c
        flip = self.uses("lumaflip", n, device) * torch.randint(0, 2, (n,), device=device)
        c = (torch.eye(4, device=device) - 2 * axis * flip[:, None, None]) @ c
        angle = (torch.rand(n, device=device) * 2 - 1) * math.pi * self.uses("hue", n, device)
        c = rotation_about(luma[:3], angle) @ c
        saturation = torch.exp2(torch.randn(n, device=device) * self.uses("saturation", n, device))
        c = (axis + (torch.eye(4, device=device) - axis) * saturation[:, None, None]) @ c
        c = c.to(x.dtype)
        if channels == 3:
            return torch.einsum("nij,njhw->nihw", c[:, :3, :3], x) + c[:, :3, 3, None, None]
        # Grey: a pixel g stands for (g, g, g); the map's output, averaged over the channels.
        gain = c[:, :3, :3].mean(dim=1).sum(dim=1)
        offset = c[:, :3, 3].mean(dim=1)
        return x * gain[:, None, None, None] + offset[:, None, None, None]

    # ------------------------------------------------------------------ the controller

    def observe(self, real_relative: Tensor) -> None:
        """D's raw outputs on a batch of augmented reals, less the objective's decision boundary."""
        signs = real_relative.detach().sign()
        self.sign_sum = self.sign_sum.to(signs.device) + signs.sum()
        self.sign_count += signs.numel()

    def adjust(self, steps_done: int, images_per_step: int, reduce=None) -> None:
        """Every ``interval`` steps: r_t over them and p moved towards the target. ``images_per_step``: the real
        images D saw in a step, over every process; ``reduce`` sums a tensor over the training processes
        (data-parallel runs), so that every process moves p alike."""
        if steps_done % self.interval or self.sign_count == 0:
            return
        totals = torch.stack([self.sign_sum.float(), torch.tensor(float(self.sign_count), device=self.sign_sum.device)])
        if reduce is not None:
            totals = reduce(totals)
        self.r_t = float(totals[0] / totals[1])
        step = math.copysign(1.0, self.r_t - self.target) if self.r_t != self.target else 0.0
        self.p = min(max(self.p + step * images_per_step * self.interval / self.speed_images, 0.0), 1.0)
        self.sign_sum, self.sign_count = torch.zeros((), device=self.sign_sum.device), 0

    def state_dict(self) -> Dict[str, Any]:
        return {"p": self.p, "r_t": self.r_t, "sign_sum": float(self.sign_sum), "sign_count": self.sign_count}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.p, self.r_t = float(state["p"]), float(state["r_t"])
        self.sign_sum, self.sign_count = torch.tensor(float(state["sign_sum"])), int(state["sign_count"])


# The low-pass filter of the geometric transforms' resampling: Symlet-6's scaling filter, as the reference uses.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
        0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
        0.0017677118642428036, -0.007800708325034148)  # fmt: skip


def upsample_2x(x: Tensor, taps: Tensor) -> Tensor:
    """Images (N, C, H, W) to (N, C, 2H, 2W): zeros inserted, convolved with the separable filter ``taps`` (gain 2 per
    axis), aligned as stylegan2-ada's upfirdn2d aligns it (padding (L + 1) // 2 before, (L - 2) // 2 after). A strided
    transposed convolution does the insertion and the filter in one pass (three times faster here than convolving
    the zero-filled image)."""
    n, c, height, width = x.shape
    kernel = (taps * 2).to(x.dtype)[None, None]
    y = torch.nn.functional.conv_transpose2d(x.reshape(n * c, 1, height, width), kernel.unsqueeze(2), stride=(1, 2))
    y = torch.nn.functional.conv_transpose2d(y, kernel.unsqueeze(3), stride=(2, 1))
    first = len(taps) - 1 - (len(taps) + 1) // 2
    return y[:, 0, first : first + 2 * height, first : first + 2 * width].reshape(n, c, 2 * height, 2 * width)


def downsample_2x(x: Tensor, taps: Tensor, crop: int) -> Tensor:
    """Images cropped by ``crop`` pixels at each side, filtered with ``taps`` and every second pixel kept, as
    upfirdn2d with down=2 and flip_filter: a strided one-dimensional convolution per axis (twice as fast here as a
    depthwise 2-D convolution that keeps every pixel)."""
    n, c = x.shape[:2]
    x = x[:, :, crop : x.shape[2] - crop, crop : x.shape[3] - crop]
    height, width = x.shape[2:]
    kernel = taps.to(x.dtype)[None, None]
    y = torch.nn.functional.conv1d(x.reshape(-1, 1, width), kernel, stride=2)
    half_width = y.shape[2]
    y = y.reshape(n, c, height, half_width).transpose(2, 3).reshape(-1, 1, height)
    y = torch.nn.functional.conv1d(y, kernel, stride=2)
    return y.reshape(n, c, half_width, -1).transpose(2, 3)


def resample(x: Tensor, m: Tensor) -> Tensor:
    """Images (N, C, H, W) resampled through per-image affine maps ``m`` (N, 3, 3: an output pixel's position, in
    pixels about the centre, to where it samples), as stylegan2-ada resamples its geometric transforms: padded by
    reflection to cover what the maps reach, upsampled 2× through the Symlet-6 filter, sampled bilinearly, filtered and
    downsampled back. This keeps detail a single bilinear sample blurs (under a fractional shift, about 0.64 of white
    noise's variance against 0.45). Images whose map is the identity are left as they are: the Symlet-6 pair up and
    down is the identity (to float rounding), so only the images a transform moved pay for the resampling."""
    moved = (m != torch.eye(3, device=m.device, dtype=m.dtype)).any(dim=2).any(dim=1)
    if not bool(moved.any()):
        return x
    if not bool(moved.all()):
        out = x.clone()
        out[moved] = resample_all(x[moved], m[moved])
        return out
    return resample_all(x, m)


def resample_all(x: Tensor, m: Tensor) -> Tensor:
    """``resample`` for every image, the identity maps included."""
    n, channels, height, width = x.shape
    taps = torch.tensor(SYM6, device=x.device)
    taps = taps / taps.sum()
    border = len(SYM6) // 4
    # The padding that covers every corner's source, at least the filter's reach, at most what reflection allows.
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1.0], [cx, -cy, 1.0], [cx, cy, 1.0], [-cx, cy, 1.0]], device=x.device)
    reach = (m.float() @ corners.T)[:, :2, :].permute(1, 0, 2).flatten(1)  # (xy, images × corners)
    margin = torch.cat([-reach, reach]).max(dim=1).values
    margin = margin + torch.tensor([border * 2 - cx, border * 2 - cy] * 2, device=x.device)
    margin = margin.clamp(min=0).minimum(torch.tensor([width - 1, height - 1] * 2, device=x.device))
    mx0, my0, mx1, my1 = (int(v) for v in margin.ceil())
    x = torch.nn.functional.pad(x, [mx0, mx1, my0, my1], mode="reflect")
    m = (
        translate(
            torch.full((n,), (mx0 - mx1) / 2, device=x.device), torch.full((n,), (my0 - my1) / 2, device=x.device)
        )
        @ m
    )
    x = upsample_2x(x, taps)
    twice, half = (scale(*[torch.full((n,), f, device=x.device)] * 2) for f in (2.0, 0.5))
    m = twice @ m @ half
    shift, back = (translate(*[torch.full((n,), d, device=x.device)] * 2) for d in (-0.5, 0.5))
    m = shift @ m @ back
    out_h, out_w = (height + border * 2) * 2, (width + border * 2) * 2
    to_unit = scale(
        torch.full((n,), 2 / x.shape[3], device=x.device), torch.full((n,), 2 / x.shape[2], device=x.device)
    )
    to_pixels = scale(torch.full((n,), out_w / 2, device=x.device), torch.full((n,), out_h / 2, device=x.device))
    theta = (to_unit @ m @ to_pixels)[:, :2, :].to(x.dtype)
    grid = torch.nn.functional.affine_grid(theta, [n, channels, out_h, out_w], align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # The reference's padding here, 2 * border - (L - 1) // 2 = 1 for Symlet-6, crops that many pixels at each side.
    return downsample_2x(x, taps, crop=border * 2 - (len(SYM6) - 1) // 2)


def rotation_about(axis: Tensor, angle: Tensor) -> Tensor:
    """Homogeneous 4 × 4 rotations by ``angle`` (one per image) about the unit 3-vector ``axis`` (Rodrigues)."""
    n = len(angle)
    k = torch.zeros(3, 3, device=angle.device)
    k[0, 1], k[0, 2], k[1, 2] = -axis[2], axis[1], -axis[0]
    k = k - k.T
    r3 = (torch.eye(3, device=angle.device) + angle.sin()[:, None, None] * k
          + (1 - angle.cos())[:, None, None] * (k @ k))  # fmt: skip
    r = eye(n, 4, angle.device)
    r[:, :3, :3] = r3
    return r

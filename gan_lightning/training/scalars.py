"""The values a logging step hands to the loggers: ``loss/d``, ``loss/g``, D's outputs on real and fake samples
(``d/real``, ``d/fake``: probabilities for classifier objectives, 1/2 at the equilibrium), ``d/r_t`` (the share of
reals D takes for real, as a sign: E[sign(D(x_real))], near 1 when D memorises them), the gradient norms, the
learning rates, ADA's ``augment/p`` and, with ``trainer.on_nan=skip``, the updates dropped so far."""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor


def measured(module, d_loss: Tensor, g_loss: Tensor, real_out: Tensor, fake_out: Tensor) -> Dict[str, Tensor]:
    """A logging step's values, as tensors (averaged over the batch: dimension 0)."""
    return {
        "loss/d": d_loss.detach(),
        "loss/g": g_loss.detach(),
        "d/real": module.objective.d_output(real_out.detach()).mean(dim=0),
        "d/fake": module.objective.d_output(fake_out.detach()).mean(dim=0),
        "d/r_t": module.objective.real_side(real_out.detach()).sign().mean(dim=0),
        **module.grad_norms,
    }


def logged_values(module, values: Dict[str, Tensor], d_optimizer, g_optimizer) -> Dict[str, float]:
    """``values`` read from the device in one host read, with the learning rates and the updates dropped so far."""
    logged = dict(zip(values, torch.stack([value.float() for value in values.values()]).tolist()))
    logged.update({"lr/d": d_optimizer.param_groups[0]["lr"], "lr/g": g_optimizer.param_groups[0]["lr"]})
    if module.losses.adaptive is not None:
        logged["augment/p"] = module.losses.adaptive.p
    if module.on_nan == "skip":
        logged["train/skipped_updates"] = float(module.nonfinite.skipped)
    return logged

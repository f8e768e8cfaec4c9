"""D's health: its outputs on real images it trains on against real images it never saw.

Every N steps D scores a fixed set of training images and a fixed set of held-out ones (the data set's other split)
and logs its mean output on each (``d/real_train``, ``d/real_heldout``: probabilities for classifier objectives) and
their difference, ``d/heldout_gap``. A D that generalises scores both alike; one that memorises its training images
scores them higher than unseen ones of the same distribution: the direct sign of the overfitting that augmentation
(gan_lightning/augment/) counters, visible before the samples degrade. D scores each set as one batch in training
mode, as in its updates, without a gradient; its batch-norm statistics are left as they were.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from gan_lightning.training.losses import score
from gan_lightning.training.periodic import Periodic

IMAGES = 256  # per set: the gap's standard error is then a few hundredths of a probability


@contextmanager
def buffers_kept(network: nn.Module):
    """Forward passes in the block leave ``network``'s buffers (batch-norm running statistics) as they were."""
    kept = [(buffer, buffer.clone()) for buffer in network.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in kept:
                buffer.copy_(value)


class DiscriminatorHealth(Periodic):
    def __init__(self, data_config, every_n_steps: int, images: int = IMAGES):
        super().__init__(every_n_steps)
        self.data_config, self.images = data_config, images
        self.train_set: Optional[Tuple[Tensor, Optional[Tensor]]] = None
        self.heldout_set: Optional[Tuple[Tensor, Optional[Tensor]]] = None

    def on_train_start(self, trainer, pl_module) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        heldout = self.data_config.heldout_images(self.images) if self.every_n_steps > 0 else None
        if heldout is None or not hasattr(datamodule, "real_samples"):
            return  # no held-out split (synthetic data, an image folder): d/r_t alone tells D's health
        conditional = getattr(pl_module.generator, "num_classes", 0) > 0
        train_images, train_labels = datamodule.real_samples(min(self.images, len(datamodule.data)), seed=0)
        self.train_set = (train_images, train_labels if conditional else None)
        self.heldout_set = (heldout[0], heldout[1] if conditional else None)

    def fire(self, trainer, pl_module) -> None:
        if self.train_set is None or not trainer.is_global_zero:
            return
        discriminator = pl_module.discriminator
        weight = next(discriminator.parameters())  # the device and precision D computes in
        means = []
        with torch.no_grad(), buffers_kept(discriminator):
            for images, labels in (self.train_set, self.heldout_set):
                labels = None if labels is None else labels.to(weight.device)
                out = score(discriminator, images.to(weight.device, weight.dtype), labels)
                means.append(float(pl_module.objective.d_output(out).mean()))
        values = {"d/real_train": means[0], "d/real_heldout": means[1], "d/heldout_gap": means[0] - means[1]}
        for logger in trainer.loggers:
            logger.log_metrics(values, step=pl_module.logged_step)

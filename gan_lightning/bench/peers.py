"""What a user would write instead of the framework: the two GAN training patterns the benchmark compares with.

- ``lightning_tutorial``: a LightningModule written the way Lightning's GAN tutorial writes it: manual
  optimization with ``toggle_optimizer``, G's update first on fresh latents, then D's on the real batch and the
  same latents' fakes detached, binary cross-entropy against tensors of ones and zeros, ``self.log`` of both
  losses, and a shuffled ``DataLoader``. As in the tutorial, G runs three times per step on the same latents:
  ``self.generated_imgs`` (which the tutorial also logs as an image grid every step; not done here), the fakes
  of G's loss, and the fakes D's loss detaches.
- ``pytorch_dcgan_example``: the loop of PyTorch's DCGAN example: D's update on the real batch and on a fake
  batch in forward passes of their own, then G's update reusing those fakes, with a shuffled ``DataLoader``.

Both train the framework's networks with its optimizers on the same data, with the non-saturating loss (binary
cross-entropy on D's logits is the framework's ``nonsaturating`` objective). Neither writes logs or
checkpoints, so they do less than a framework run; each is timed over the steps after a warm-up, as the
framework is.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Callable, Dict, Iterator

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# The precisions hand-written loops reproduce: Lightning's plugin for each autocasts the training step to this type.
PLAIN_AUTOCAST = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16}


def plain_autocast(cfg, device: torch.device):
    """The autocast Lightning's precision plugin puts around each training step."""
    dtype = PLAIN_AUTOCAST[cfg.trainer.precision]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def shuffled_batches(data: torch.Tensor, batch_size: int) -> DataLoader:
    """The data set as the patterns load it: a TensorDataset in a shuffled DataLoader (in this process)."""
    return DataLoader(TensorDataset(data), batch_size=batch_size, shuffle=True, drop_last=True)


def networks(cfg):
    """The framework's networks in PyTorch's default memory format, with its optimizers as users write them
    (``torch.optim.Adam(params, lr=..., betas=...)``: PyTorch's default implementation)."""
    generator, discriminator = cfg.model.build(cfg.data.sample_shape, cfg.data.value_range, cfg.objective.per_sample_d)
    return (
        generator,
        discriminator,
        cfg.optimizer.g.build(generator.parameters(), fused=False),
        cfg.optimizer.d.build(discriminator.parameters(), fused=False),
    )


class TutorialGAN(pl.LightningModule):
    """Lightning's GAN tutorial, on the framework's networks and optimizers."""

    def __init__(self, cfg):
        super().__init__()
        self.automatic_optimization = False
        self.generator, self.discriminator, self.g_optimizer, self.d_optimizer = networks(cfg)

    def forward(self, z):
        return self.generator(z)

    def configure_optimizers(self):
        return [self.g_optimizer, self.d_optimizer]

    def training_step(self, batch, batch_idx):
        (imgs,) = batch
        optimizer_g, optimizer_d = self.optimizers()
        z = self.generator.sample_latent(len(imgs))

        self.toggle_optimizer(optimizer_g)
        self.generated_imgs = self(z)
        valid = torch.ones(imgs.size(0)).type_as(imgs)
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(self(z)), valid)
        self.log("g_loss", g_loss, prog_bar=True)
        self.manual_backward(g_loss)
        optimizer_g.step()
        optimizer_g.zero_grad()
        self.untoggle_optimizer(optimizer_g)

        self.toggle_optimizer(optimizer_d)
        real_loss = F.binary_cross_entropy_with_logits(self.discriminator(imgs), valid)
        fake = torch.zeros(imgs.size(0)).type_as(imgs)
        fake_loss = F.binary_cross_entropy_with_logits(self.discriminator(self(z).detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        self.log("d_loss", d_loss, prog_bar=True)
        self.manual_backward(d_loss)
        optimizer_d.step()
        optimizer_d.zero_grad()
        self.untoggle_optimizer(optimizer_d)


class BatchTimer(pl.Callback):
    """Time from the end of training batch ``start`` to the end of batch ``stop`` (counted from 1)."""

    def __init__(self, start: int, stop: int, synchronize: Callable[[], None]):
        self.start, self.stop, self.synchronize, self.batches, self.times = start, stop, synchronize, 0, {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1
        if self.batches in (self.start, self.stop):
            self.synchronize()
            self.times[self.batches] = time.perf_counter()
        if self.batches >= self.stop:
            trainer.should_stop = True


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def lightning_tutorial(cfg, data: torch.Tensor, warmup: int, steps: int, device: torch.device) -> float:
    """Steps/s of the Lightning-tutorial pattern over ``steps`` steps after ``warmup``."""
    pl.seed_everything(cfg.seed, verbose=False)
    module = TutorialGAN(cfg)
    timer = BatchTimer(warmup, warmup + steps, synchronizer(device))
    trainer = pl.Trainer(
        accelerator=device.type, devices=1, precision=cfg.trainer.precision, max_epochs=-1, logger=False, callbacks=[timer],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, shuffled_batches(data, cfg.data.batch_size))
    return steps / (timer.times[warmup + steps] - timer.times[warmup])


def endless(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def pytorch_dcgan_example(cfg, data: torch.Tensor, warmup: int, steps: int, device: torch.device) -> float:
    """Steps/s of the PyTorch DCGAN example's loop over ``steps`` steps after ``warmup``."""
    pl.seed_everything(cfg.seed, verbose=False)
    netG, netD, optimizerG, optimizerD = networks(cfg)
    netG, netD = netG.to(device), netD.to(device)
    synchronize, times = synchronizer(device), {}
    batches = endless(shuffled_batches(data, cfg.data.batch_size))
    for step in range(1, warmup + steps + 1):
        (real,) = next(batches)
        real = real.to(device)
        with plain_autocast(cfg, device):
            netD.zero_grad()
            label = torch.full((len(real),), 1.0, device=device)
            errD_real = F.binary_cross_entropy_with_logits(netD(real).view(-1), label)
            errD_real.backward()
            fake = netG(netG.sample_latent(len(real)))
            label.fill_(0.0)
            errD_fake = F.binary_cross_entropy_with_logits(netD(fake.detach()).view(-1), label)
            errD_fake.backward()
            optimizerD.step()

            netG.zero_grad()
            label.fill_(1.0)
            errG = F.binary_cross_entropy_with_logits(netD(fake).view(-1), label)
            errG.backward()
            optimizerG.step()
        if step in (warmup, warmup + steps):
            synchronize()
            times[step] = time.perf_counter()
    return steps / (times[warmup + steps] - times[warmup])


PEERS: Dict[str, Callable[..., float]] = {
    "lightning_tutorial": lightning_tutorial,
    "pytorch_dcgan_example": pytorch_dcgan_example,
}

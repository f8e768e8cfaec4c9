"""The GAN as a LightningModule: manual optimization alternating D and G updates, nothing else.

How the losses are formed from D's outputs is ``losses``; how a step runs (eagerly or replayed as a CUDA graph) is
``steps``; what a non-finite loss does is ``nonfinite``; what a checkpoint keeps of training is ``state``; what
callbacks and commands read of a trained GAN is ``sampling``; how an update and a logged value reach torch and the
loggers (through Lightning's wrappers or directly) is gan_lightning/adapter/fastpath.py.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from gan_lightning.adapter.access import attached_trainer
from gan_lightning.adapter.fastpath import FastPathModule
from gan_lightning.models.generator import Generator
from gan_lightning.training.distributed import Agreement, rank_seed
from gan_lightning.training.ema import ExponentialMovingAverage
from gan_lightning.training.losses import Layout, Losses, Scores
from gan_lightning.training.nonfinite import nonfinite_policy
from gan_lightning.training.objectives import Objective
from gan_lightning.training.optim import OptimizerConfig
from gan_lightning.training.sampling import Sampling
from gan_lightning.training.scalars import logged_values, measured
from gan_lightning.training.state import load_training_state, save_training_state
from gan_lightning.training.steps import EagerSteps, step_executor

# At most this many steps pass between two reads of the losses' finiteness (on_nan=stop); logging steps
# and every periodic callback (checkpoints, samples, evaluation) read them too, before using the weights.
LOSS_CHECK_EVERY_N_STEPS = 100


@dataclass
class StepSettings:
    """How the GAN trains, as plain values (``trainer.*`` and ``regularization.*``; see gan_lightning/config.py)."""

    d_steps: int = 1
    g_steps: int = 1
    updates: str = "alternating"  # or "simultaneous"
    g_fakes: str = "reuse"  # or "fresh"
    max_steps: Optional[int] = None
    d_batch_stats: str = "separate"  # or "joint"
    r1_gamma: float = 0.0
    r1_interval: int = 1
    ema_decay: Optional[float] = None
    ema_start_step: int = 0
    on_nan: str = "stop"  # or "skip"
    max_skipped_fraction: float = 0.1
    fast_path: bool = True
    cuda_graph: bool = False


def split(batch: Tensor, parts: int) -> tuple:
    """``batch`` in ``parts`` minibatches (views); one part is the batch itself, without a chunk call (a few µs)."""
    return (batch,) if parts == 1 else batch.chunk(parts)


@contextmanager
def frozen(parameters):
    """``parameters`` need no gradient inside the block; those that needed one need one again after it.
    (Lightning's toggle_optimizer does it for every optimizer's parameters: 15 µs against 1 µs for D's.)"""
    thawed = [p for p in parameters if p.requires_grad]
    for p in thawed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in thawed:
            p.requires_grad_(True)


def parameters_of(optimizer) -> list:
    return [p for group in optimizer.param_groups for p in group["params"]]


class GAN(Sampling, FastPathModule):
    """Each training step is one iteration of Algorithm 1 of Goodfellow et al. 2014.

    The batch holds ``d_steps`` real minibatches. For each, D takes one update on that real minibatch and
    a fresh fake one; then G takes ``g_steps`` updates. With ``g_fakes="fresh"`` each G update draws fresh
    latents, as Algorithm 1 does; with ``"reuse"`` the first one scores the fakes of D's last update again,
    through the G graph kept from making them, as PyTorch's DCGAN example does: one forward pass of G less
    per step, and G's gradient is still taken against the D that D's update produced. When D's output for one sample
    depends on the rest of its batch (batch norm), ``d_batch_stats`` says which batch that is: with
    ``separate`` D scores real and fake samples in minibatches of their own, and G's update scores the
    fakes alone; with ``joint`` D scores them in one minibatch in both updates, so D(G(z)) is computed the
    same way in the D and the G update. A D without batch statistics scores real and fake samples in one
    forward pass (the same outputs, fewer kernel launches) and the fakes alone in G's update.

    With ``updates="simultaneous"`` the last D update and the G update take their gradients from one
    forward pass of G and D at the same parameters, then both networks step: the simultaneous gradient
    play of Mescheder et al. 2017, one G forward and one D forward on the fakes cheaper than Algorithm 1.
    """

    def __init__(
        self, generator: Generator, discriminator: nn.Module, objective: Objective, g_optimizer: OptimizerConfig, d_optimizer: OptimizerConfig,
        settings: StepSettings = StepSettings(), layout: Optional[Layout] = None, augment: Optional[Callable] = None,
    ):  # fmt: skip
        super().__init__(settings.fast_path)
        self.generator, self.discriminator, self.objective = generator, discriminator, objective
        self.g_optimizer_config, self.d_optimizer_config = g_optimizer, d_optimizer
        self.d_steps, self.g_steps, self.max_steps = settings.d_steps, settings.g_steps, settings.max_steps
        self.simultaneous = settings.updates == "simultaneous"
        self.reuse_fakes = settings.g_fakes == "reuse" and not self.simultaneous
        self.generator_ema = (
            ExponentialMovingAverage(generator, settings.ema_decay) if settings.ema_decay is not None else None
        )
        self.ema_start_step = settings.ema_start_step
        # augment: what every image D sees goes through, real and generated alike (gan_lightning/augment/); None: nothing.
        self.losses = Losses.of(
            objective, discriminator, settings.r1_gamma, settings.r1_interval, settings.d_batch_stats, layout, augment
        )
        # How each step runs: eagerly, or (cuda_graph) captured as CUDA graphs from on_train_start (training/steps.py).
        self.cuda_graph, self.steps = settings.cuda_graph, EagerSteps()
        # What a non-finite loss does (trainer.on_nan: training/nonfinite.py).
        self.on_nan, self.nonfinite = (
            settings.on_nan,
            nonfinite_policy(settings.on_nan, settings.max_skipped_fraction),
        )
        self.steps_done = 0  # completed training steps (iterations), saved in checkpoints
        self.grad_norms: Dict[str, Tensor] = {}  # the latest gradient norm of each network, for logging
        self.logging_now = True  # whether the current step's values are logged
        self.measuring = True  # whether it computes them (a step being captured does at every step it replays)
        self.processes = 1  # training processes (set at setup): the trainer's world_size is a chain of lookups
        # (DDP(G), DDP(D)) while GANDDPStrategy trains; a plain tuple, so checkpoints keep their keys.
        self.replicas: Optional[tuple] = None

    def configure_optimizers(self):
        # A captured step reads the optimizers' step counts on the GPU (capturable), not as host numbers.
        trainer = attached_trainer(self)
        mixed_precision = trainer is not None and str(trainer.precision).endswith("-mixed")
        networks = ((self.d_optimizer_config, self.discriminator), (self.g_optimizer_config, self.generator))
        return [
            config.build(net.parameters(), fused=config.fusable(mixed_precision), capturable=self.cuda_graph)
            for config, net in networks
        ]

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.generator(z, labels)

    def setup(self, stage: str) -> None:
        self.processes = self.trainer.world_size
        if self.processes > 1:
            self.nonfinite.across = Agreement(self.trainer.strategy)  # every process stops or skips alike
            # seed_everything gives every rank the same stream; each rank draws its own latents. A resume
            # then restores each rank's own saved state (on_load_checkpoint).
            torch.manual_seed(rank_seed(torch.initial_seed(), self.global_rank))

    def training_step(self, batch, batch_idx: int) -> None:
        self.logging_now = self.is_logging_step(self.steps_done, self.max_steps)
        d_optimizer, g_optimizer = self.optimizers()
        self.d_optimizer_config.adjust(d_optimizer, self.steps_done, self.max_steps)
        self.g_optimizer_config.adjust(g_optimizer, self.steps_done, self.max_steps)
        run = lambda batch: self.updates(batch, d_optimizer, g_optimizer)  # noqa: E731
        outputs, self.grad_norms = self.steps.run(batch, self.steps_done, run)
        self.count_step()
        if self.logging_now or self.steps_done % LOSS_CHECK_EVERY_N_STEPS == 0:
            self.check_losses()
            self.nonfinite.check_skipped(self.steps_done, self.d_steps + self.g_steps, final=False)
        if self.logging_now:
            self.log_step(*outputs, d_optimizer, g_optimizer)

    def updates(self, batch, d_optimizer, g_optimizer):
        """The step's D and G updates and the EMA's; returns (D's loss, G's loss, D's outputs on the last real and
        fake minibatches) and the gradient norms computed for logging."""
        self.measuring = self.steps.measures(self.logging_now)
        reals, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
        labels_per_update = split(labels, self.d_steps) if labels is not None else [None] * self.d_steps
        minibatches = list(zip(split(reals, self.d_steps), labels_per_update))
        first_update = self.steps_done * self.d_steps
        d_minibatches = minibatches[:-1] if self.simultaneous else minibatches
        kept = None  # the last D update's fakes (and their labels), G's graph attached, for G's first update
        for i, (real, real_labels) in enumerate(d_minibatches):
            keep = self.reuse_fakes and i == len(d_minibatches) - 1
            d_loss, real_out, fake_out, kept = self.discriminator_update(
                real, real_labels, d_optimizer, first_update + i, keep
            )
        if self.simultaneous:
            real, real_labels = minibatches[-1]
            d_loss, g_loss, real_out, fake_out = self.simultaneous_update(
                real, real_labels, d_optimizer, g_optimizer, first_update + self.d_steps - 1
            )
        else:
            for j in range(self.g_steps):
                g_loss = self.generator_update(real, real_labels, g_optimizer, d_optimizer, kept if j == 0 else None)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, decay=0.0 if self.ema_warming_up() else None)
        return (d_loss, g_loss, real_out, fake_out), dict(self.grad_norms)

    def ema_warming_up(self) -> bool:
        """Whether the EMA still copies G (before regularization.ema_start_step)."""
        return self.steps_done < self.ema_start_step

    def on_train_start(self) -> None:
        super().on_train_start()
        self.steps = step_executor(self)

    def graph_generators(self) -> List[torch.Generator]:
        """The CUDA generators besides the default one that a step draws from (a captured step registers them)."""
        return []

    def count_step(self) -> None:
        """One training step done; training stops after max_steps of them."""
        self.steps_done += 1
        if self.max_steps is not None and self.steps_done >= self.max_steps:
            self.trainer.should_stop = True

    def log_step(self, d_loss, g_loss, real_out, fake_out, d_optimizer, g_optimizer) -> None:
        values = measured(self, d_loss, g_loss, real_out, fake_out)
        self.log_values(logged_values(self, values, d_optimizer, g_optimizer), self.logged_step)

    @property
    def logged_step(self) -> int:
        """The step the loggers file the latest training step's values, sample grids and metrics under: its number,
        as summary.json, file names and progress lines count (training step N at N, from 1)."""
        return self.steps_done

    def new_fakes(self, n: int, for_g_update: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        """``n`` fakes from fresh latents, and their labels (None for an unconditional G). For a G update they
        come with G's graph, from the network that update trains (its DDP wrapper, which synchronises G's
        gradients); otherwise under no_grad."""
        generator = self.replicas[0] if self.replicas and for_g_update else self.generator
        fake_labels = self.generator.sample_labels(n)
        with torch.set_grad_enabled(for_g_update):
            return generator(self.generator.sample_latent(n), fake_labels), fake_labels

    def discriminator_update(
        self, real: Tensor, labels: Optional[Tensor], optimizer, update_index: int, keep_fakes: bool = False
    ):
        """One D update; returns D's loss and outputs, and with ``keep_fakes`` its fakes and their labels made
        for G's update (see new_fakes), for G's update to reuse."""
        # Nothing to freeze: D's loss sees the fakes detached (or made under no_grad), so no G gradient is computed.
        fake, fake_labels = self.new_fakes(len(real), for_g_update=keep_fakes)
        loss, scores = self.discriminator_loss(real, labels, fake.detach(), fake_labels, update_index)
        if self.apply_update(loss, optimizer, self.d_optimizer_config, "loss/d"):
            self.objective.after_d_step(self.discriminator)
        return loss, scores.real, scores.fake, (fake, fake_labels) if keep_fakes else None

    def simultaneous_update(self, real: Tensor, labels: Optional[Tensor], d_optimizer, g_optimizer, update_index: int):
        """D's and G's gradients from one forward pass at the current (D, G), then a step of each."""
        fake, fake_labels = self.new_fakes(len(real))
        d_loss, scores = self.discriminator_loss(real, labels, fake, fake_labels, update_index)
        g_loss = self.losses.generator(scores, fake_labels)
        # Both gradients before either step: the steps change the weights the backward passes read.
        d_ready = self.gradients(d_loss, d_optimizer, "loss/d", inputs=parameters_of(d_optimizer), retain_graph=True)
        g_ready = self.gradients(g_loss, g_optimizer, "loss/g", inputs=parameters_of(g_optimizer))
        if d_ready:
            self.step(d_optimizer, self.d_optimizer_config)
            self.objective.after_d_step(self.discriminator)
        if g_ready:
            self.step(g_optimizer, self.g_optimizer_config)
        return d_loss, g_loss, scores.real, scores.fake

    def discriminator_loss(
        self, real: Tensor, labels: Optional[Tensor], fake: Tensor, fake_labels: Optional[Tensor], update_index: int
    ) -> Tuple[Tensor, Scores]:
        """D's loss on a real and a fake batch with the penalties due at this update, and D's outputs."""
        discriminator = self.replicas[1] if self.replicas else self.discriminator  # the update's network synchronises
        return self.losses.discriminator(
            discriminator, real, labels, fake, fake_labels, update_index, penalised=self.discriminator
        )

    def generator_update(
        self, real: Tensor, labels: Optional[Tensor], optimizer, d_optimizer, fakes: Optional[tuple] = None
    ) -> Tensor:
        """One G update, on ``fakes`` (kept from D's update, see discriminator_update) or on fresh ones."""
        # D is only scored here: its parameters (d_optimizer's, a list at hand, where D.parameters() walks
        # every submodule) need no gradient. Only G's gradients are synchronised, so D runs outside its DDP wrapper.
        with frozen(parameters_of(d_optimizer)):
            fake, fake_labels = fakes if fakes is not None else self.new_fakes(len(real))
            scores = self.losses.score(
                self.discriminator, real if self.losses.g_scores_real else None, fake, labels, fake_labels
            )
            loss = self.losses.generator(scores, fake_labels)
            self.apply_update(loss, optimizer, self.g_optimizer_config, "loss/g")
        return loss

    def apply_update(self, loss: Tensor, optimizer, config: OptimizerConfig, name: str) -> bool:
        """Backward and step; a non-finite loss stops the run or, with on_nan=skip, drops this update."""
        if not self.gradients(loss, optimizer, name):
            return False
        self.step(optimizer, config)
        return True

    def gradients(self, loss: Tensor, optimizer, name: str, **backward_options) -> bool:
        """The gradients of ``loss`` for ``optimizer``'s parameters; False (none computed) when the non-finite policy
        drops the update. ``backward_options`` go to Tensor.backward."""
        # The torch optimizer's own zero_grad: Lightning's wrapper adds only lookups.
        optimizer.optimizer.zero_grad(set_to_none=True)
        if not self.nonfinite.admits(self.steps, self.steps_done + 1, name, loss):
            return False
        self.backward_pass(loss if loss.dim() == 0 else loss.sum(), **backward_options)  # members' losses: a sum
        if self.measuring:  # before clipping: the norm the loss produced (a tensor: no host sync)
            self.grad_norms[name.replace("loss/", "grad_norm/")] = self.gradient_norm(
                [p.grad for p in parameters_of(optimizer) if p.grad is not None]
            )
        return True

    def gradient_norm(self, gradients: List[Tensor]) -> Tensor:
        return torch.nn.utils.get_total_norm(gradients)

    def step(self, optimizer, config: OptimizerConfig) -> None:
        """Clip (when configured) and step."""
        if config.grad_clip_norm is not None:
            self.clip(optimizer, config.grad_clip_norm)
        self.step_optimizer(optimizer)
        self.steps.stepped(lambda: self.count_optimizer_step(optimizer))

    def clip(self, optimizer, max_norm: float) -> None:
        """Scale the gradients down to a total 2-norm of at most ``max_norm``."""
        self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")

    def check_losses(self) -> None:
        """Raise Diverged for a non-finite loss since the last check (training/nonfinite.py)."""
        self.nonfinite.check_losses(self.steps)

    def on_train_end(self) -> None:
        self.check_losses()  # a run stopped before max_steps (max_time) may not have checked its last steps
        self.nonfinite.check_skipped(self.steps_done, self.d_steps + self.g_steps, final=True)

    def on_save_checkpoint(self, checkpoint: Dict) -> None:
        save_training_state(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: Dict) -> None:
        load_training_state(self, checkpoint)

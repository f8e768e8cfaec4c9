"""The GAN as a LightningModule: manual optimization alternating D and G updates, nothing else.

How the losses are formed from D's outputs is gan_lightning/losses.py; how an update reaches torch (through
Lightning's wrappers or directly) is gan_lightning/adapter/fastpath.py.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from gan_lightning.adapter.access import attached_trainer
from gan_lightning.adapter.fastpath import FastPathModule
from gan_lightning.checkpoints import TrainingState, read_training_state, write_training_state
from gan_lightning.distributed import gather, rank_seed
from gan_lightning.ema import ExponentialMovingAverage
from gan_lightning.errors import Diverged, UserError
from gan_lightning.graphs import StepGraphs
from gan_lightning.losses import R1, Layout, Losses, Scores, score
from gan_lightning.models.generator import Generator
from gan_lightning.models.conditional import ConditionalDiscriminator
from gan_lightning.objectives import Objective
from gan_lightning.optim import OptimizerConfig

# At most this many steps pass between two reads of the losses' finiteness (on_nan=stop); logging steps
# and every periodic callback (checkpoints, samples, evaluation) read them too, before using the weights.
LOSS_CHECK_EVERY_N_STEPS = 100
# on_nan=skip judges the fraction of dropped updates once this many updates were attempted (and at the end).
MIN_UPDATES_JUDGED = 100


def batch_coupled(discriminator: nn.Module) -> bool:
    """Whether D's output for a sample depends on the rest of its batch (batch norm). Networks trained side by
    side (gan_lightning.vectorized) show their common ``architecture``."""
    architecture = getattr(discriminator, "architecture", discriminator)
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in architecture.modules())


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


@contextmanager
def eval_mode(network: nn.Module):
    """``network`` in eval mode for the block, then back in the mode it was in."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)


class GAN(FastPathModule):
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
        self,
        generator: Generator,
        discriminator: nn.Module,
        objective: Objective,
        g_optimizer: OptimizerConfig,
        d_optimizer: OptimizerConfig,
        d_steps: int = 1,
        g_steps: int = 1,
        updates: str = "alternating",
        max_steps: Optional[int] = None,
        r1_gamma: float = 0.0,
        r1_interval: int = 1,
        ema_decay: Optional[float] = None,
        ema_start_step: int = 0,
        on_nan: str = "stop",
        max_skipped_fraction: float = 0.1,
        fast_path: bool = True,
        d_batch_stats: str = "separate",
        g_fakes: str = "reuse",
        cuda_graph: bool = False,
        layout: Optional[Layout] = None,
    ):
        super().__init__(fast_path)
        self.generator, self.discriminator, self.objective = generator, discriminator, objective
        self.g_optimizer_config, self.d_optimizer_config = g_optimizer, d_optimizer
        self.d_steps, self.g_steps, self.max_steps = d_steps, g_steps, max_steps
        self.simultaneous = updates == "simultaneous"
        self.reuse_fakes = g_fakes == "reuse" and not self.simultaneous
        self.generator_ema = ExponentialMovingAverage(generator, ema_decay) if ema_decay is not None else None
        self.ema_start_step = ema_start_step
        self.cuda_graph = cuda_graph  # the step captured as CUDA graphs (gan_lightning/graphs.py), made at on_train_start
        self.step_graphs: Optional[StepGraphs] = None
        self.on_nan = on_nan  # "stop": raise Diverged; "skip": drop the update and count it
        self.max_skipped_fraction = max_skipped_fraction  # on_nan=skip: past it, skipping has become the rule: Diverged
        self.steps_done = 0  # completed training steps (iterations), saved in checkpoints
        self.skipped_updates = 0
        # on_nan=stop: (step, name, loss) of each update since the last check, read back together at the next.
        self.unchecked_losses: List[Tuple[int, str, Tensor]] = []
        self.grad_norms: Dict[str, Tensor] = {}  # the latest gradient norm of each network, for logging
        self.logging_now = True  # whether the current step's values are logged
        self.processes = 1  # training processes (set at setup): the trainer's world_size is a chain of lookups
        # (DDP(G), DDP(D)) while GANDDPStrategy trains; a plain tuple, so checkpoints keep their keys.
        self.replicas: Optional[tuple] = None
        self.d_batch_coupled = batch_coupled(discriminator)
        self.conditional = generator.num_classes > 0
        self.d_pack = getattr(discriminator, "pack", 1)  # samples per D output (PacGAN packing)
        auxiliary_classifier = isinstance(discriminator, ConditionalDiscriminator) and discriminator.mode == "acgan"
        # Lazy R1: every r1_interval-th D update, weighted by r1_interval.
        r1 = [R1(r1_gamma / 2, r1_interval)] if r1_gamma > 0 else []
        separate_batches = self.d_batch_coupled and d_batch_stats == "separate"
        self.losses = Losses(objective, [*objective.penalties(), *r1], auxiliary_classifier, separate_batches, layout)
        # G's update needs D's outputs on real samples for a relativistic objective, and for a D that normalises
        # real and fake samples together.
        self.g_scores_real = objective.g_uses_real or (self.d_batch_coupled and not separate_batches)
        if objective.per_sample_d and self.d_batch_coupled:
            raise UserError(
                f"objective={type(objective).__name__} penalises D's gradient at single samples, but D uses batch norm, "
                "which mixes the samples of a batch: use model.d_norm=layer or model.d_norm=none."
            )

    def configure_optimizers(self):
        # A captured step reads the optimizers' step counts on the GPU (capturable), not as host numbers.
        return [
            self.d_optimizer_config.build(self.discriminator.parameters(), fused=self.fusable(self.d_optimizer_config), capturable=self.cuda_graph),
            self.g_optimizer_config.build(self.generator.parameters(), fused=self.fusable(self.g_optimizer_config), capturable=self.cuda_graph),
        ]

    def fusable(self, config: OptimizerConfig) -> bool:
        # Lightning's mixed-precision plugins refuse to clip the gradients of a fused optimizer (it unscales them itself).
        trainer = attached_trainer(self)
        mixed_precision = trainer is not None and str(trainer.precision).endswith("-mixed")
        clipped_in_mixed_precision = config.grad_clip_norm is not None and mixed_precision
        return config.fused and not clipped_in_mixed_precision

    def forward(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        return self.generator(z, labels)

    def setup(self, stage: str) -> None:
        self.processes = self.trainer.world_size
        if self.processes > 1:
            # seed_everything gives every rank the same stream; each rank draws its own latents. A resume
            # then restores each rank's own saved state (on_load_checkpoint).
            torch.manual_seed(rank_seed(torch.initial_seed(), self.global_rank))

    def training_step(self, batch, batch_idx: int) -> None:
        self.logging_now = self.is_logging_step()
        d_optimizer, g_optimizer = self.optimizers()
        self.d_optimizer_config.adjust(d_optimizer, self.steps_done, self.max_steps)
        self.g_optimizer_config.adjust(g_optimizer, self.steps_done, self.max_steps)
        if self.step_graphs is not None:
            run = lambda batch: self.updates(batch, d_optimizer, g_optimizer)  # noqa: E731
            outputs, self.grad_norms = self.step_graphs.run(self.step_variant(), batch, self.steps_done, run)
        else:
            outputs, _ = self.updates(batch, d_optimizer, g_optimizer)
        self.count_step()
        if self.logging_now or self.steps_done % LOSS_CHECK_EVERY_N_STEPS == 0:
            self.check_losses()
            self.check_skipped(final=False)
        if self.logging_now:
            self.log_step(*outputs, d_optimizer, g_optimizer)

    def updates(self, batch, d_optimizer, g_optimizer):
        """The step's D and G updates and the EMA's; returns (D's loss, G's loss, D's outputs on the last real and
        fake minibatches) and the gradient norms computed for logging."""
        reals, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
        minibatches = list(zip(split(reals, self.d_steps), split(labels, self.d_steps) if labels is not None else [None] * self.d_steps))
        first_update = self.steps_done * self.d_steps
        d_minibatches = minibatches[:-1] if self.simultaneous else minibatches
        kept = None  # the last D update's fakes (and their labels), G's graph attached, for G's first update
        for i, (real, real_labels) in enumerate(d_minibatches):
            keep = self.reuse_fakes and i == len(d_minibatches) - 1
            d_loss, real_out, fake_out, kept = self.discriminator_update(real, real_labels, d_optimizer, first_update + i, keep)
        if self.simultaneous:
            real, real_labels = minibatches[-1]
            d_loss, g_loss, real_out, fake_out = self.simultaneous_update(real, real_labels, d_optimizer, g_optimizer, first_update + self.d_steps - 1)
        else:
            for j in range(self.g_steps):
                g_loss = self.generator_update(real, real_labels, g_optimizer, d_optimizer, kept if j == 0 else None)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, decay=0.0 if self.ema_warming_up() else None)
        return (d_loss, g_loss, real_out, fake_out), dict(self.grad_norms)

    def ema_warming_up(self) -> bool:
        """Whether the EMA still copies G (before regularization.ema_start_step)."""
        return self.steps_done < self.ema_start_step

    def step_variant(self) -> tuple:
        """What decides the work of the next step beyond its tensors' values: the penalties due at each of its D
        updates, and whether the EMA has started. A captured step is replayed only for its own variant."""
        first_update = self.steps_done * self.d_steps
        due = tuple(penalty.due(first_update + i) for penalty in self.losses.penalties for i in range(self.d_steps))
        return due, self.generator_ema is not None and self.ema_warming_up()

    def on_train_start(self) -> None:
        super().on_train_start()
        self.step_graphs = None
        if self.cuda_graph:
            self.check_capturable()
            # One loss checked per update (the simultaneous update's two losses stand for the last D and the G update).
            self.step_graphs = StepGraphs(self.device, self.d_steps + self.g_steps, self.graph_generators())

    def check_capturable(self) -> None:
        """Refuse, naming the setting, what a captured step cannot do (config validation refuses the rest)."""
        if self.device.type != "cuda":
            raise UserError(f"trainer.cuda_graph=true captures the step on a CUDA GPU; this run trains on {self.device.type}: trainer.cuda_graph=false")
        if not self.direct_updates:
            raise UserError(
                "trainer.cuda_graph=true needs backward passes and optimizer steps that call torch directly: one device, 32-true or "
                "bf16-mixed, trainer.fast_path=true and no callback implementing on_before_backward, on_after_backward or "
                "on_before_optimizer_step"
            )

    def capturing(self) -> bool:
        """Whether the step running now is being captured: a graph replays it at every step, logging steps included,
        so it computes every logged value."""
        return self.step_graphs is not None and self.step_graphs.capturing is not None

    def graph_generators(self) -> List[torch.Generator]:
        """The CUDA generators besides the default one that a step draws from (a captured step registers them)."""
        return []

    def count_step(self) -> None:
        """One training step done; training stops after max_steps of them."""
        self.steps_done += 1
        if self.max_steps is not None and self.steps_done >= self.max_steps:
            self.trainer.should_stop = True

    def is_logging_step(self) -> bool:
        """Whether the step about to run reaches the loggers: every log_every_n_steps-th training step, and the
        last. Only those steps compute and hand over their values."""
        trainer = attached_trainer(self)
        if trainer is None:
            return True
        due_for_loggers = (self.steps_done + 1) % max(trainer.log_every_n_steps, 1) == 0
        return due_for_loggers or self.steps_done + 1 == self.max_steps

    def measured(self, d_loss, g_loss, real_out, fake_out) -> Dict[str, Tensor]:
        """A logging step's values, as tensors (averaged over the batch: dimension 0)."""
        return {
            "loss/d": d_loss.detach(),
            "loss/g": g_loss.detach(),
            "d/real": self.objective.d_output(real_out.detach()).mean(dim=0),
            "d/fake": self.objective.d_output(fake_out.detach()).mean(dim=0),
            **self.grad_norms,
        }

    def log_step(self, d_loss, g_loss, real_out, fake_out, d_optimizer, g_optimizer) -> None:
        measured = self.measured(d_loss, g_loss, real_out, fake_out)
        # One host read for all of them.
        logged = dict(zip(measured, torch.stack([value.float() for value in measured.values()]).tolist()))
        logged.update({"lr/d": d_optimizer.param_groups[0]["lr"], "lr/g": g_optimizer.param_groups[0]["lr"]})
        if self.on_nan == "skip":
            logged["train/skipped_updates"] = float(self.skipped_updates)
        self.write_scalars(logged)

    @property
    def logged_step(self) -> int:
        """The step the loggers file the latest training step's values, sample grids and metrics under: the number
        of steps before it, as Lightning numbers a step's logged values."""
        return self.steps_done - 1

    def write_scalars(self, values: Dict[str, float]) -> None:
        """Hand this step's values to the loggers (with the epoch, as Lightning logs them) and to
        trainer.callback_metrics. self.log would do the same at the end of the step after a torchmetrics update
        per value, 2.4 ms per logging step: more than a small model's whole step."""
        trainer = attached_trainer(self)
        if trainer is None:
            return
        trainer.callback_metrics.update({name: torch.tensor(value) for name, value in values.items()})
        for logger in trainer.loggers:
            logger.log_metrics({**values, "epoch": trainer.current_epoch}, step=self.logged_step)
            logger.save()

    def new_fakes(self, n: int, for_g_update: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        """``n`` fakes from fresh latents, and their labels (None for an unconditional G). For a G update they
        come with G's graph, from the network that update trains (its DDP wrapper, which synchronises G's
        gradients); otherwise under no_grad."""
        generator = self.replicas[0] if self.replicas and for_g_update else self.generator
        fake_labels = self.generator.sample_labels(n)
        with torch.set_grad_enabled(for_g_update):
            return generator(self.generator.sample_latent(n), fake_labels), fake_labels

    def discriminator_update(self, real: Tensor, labels: Optional[Tensor], optimizer, update_index: int, keep_fakes: bool = False):
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
        d_ready = self.gradients(d_loss, d_optimizer, "loss/d", inputs=self.parameters_of(d_optimizer), retain_graph=True)
        g_ready = self.gradients(g_loss, g_optimizer, "loss/g", inputs=self.parameters_of(g_optimizer))
        if d_ready:
            self.step(d_optimizer, self.d_optimizer_config)
            self.objective.after_d_step(self.discriminator)
        if g_ready:
            self.step(g_optimizer, self.g_optimizer_config)
        return d_loss, g_loss, scores.real, scores.fake

    def discriminator_loss(self, real: Tensor, labels: Optional[Tensor], fake: Tensor, fake_labels: Optional[Tensor], update_index: int) -> Tuple[Tensor, Scores]:
        """D's loss on a real and a fake batch with the penalties due at this update, and D's outputs."""
        discriminator = self.replicas[1] if self.replicas else self.discriminator  # the update's network synchronises
        return self.losses.discriminator(discriminator, real, labels, fake, fake_labels, update_index, penalised=self.discriminator)

    def generator_update(self, real: Tensor, labels: Optional[Tensor], optimizer, d_optimizer, fakes: Optional[tuple] = None) -> Tensor:
        """One G update, on ``fakes`` (kept from D's update, see discriminator_update) or on fresh ones."""
        # D is only scored here: its parameters (d_optimizer's, a list at hand, where D.parameters() walks
        # every submodule) need no gradient. Only G's gradients are synchronised, so D runs outside its DDP wrapper.
        with frozen(self.parameters_of(d_optimizer)):
            fake, fake_labels = fakes if fakes is not None else self.new_fakes(len(real))
            scores = self.losses.score(self.discriminator, real if self.g_scores_real else None, fake, labels, fake_labels)
            loss = self.losses.generator(scores, fake_labels)
            self.apply_update(loss, optimizer, self.g_optimizer_config, "loss/g")
        return loss

    def apply_update(self, loss: Tensor, optimizer, config: OptimizerConfig, name: str) -> bool:
        """Backward and step; a non-finite loss stops the run or, with on_nan=skip, drops this update."""
        if not self.gradients(loss, optimizer, name):
            return False
        self.step(optimizer, config)
        return True

    @staticmethod
    def parameters_of(optimizer) -> list:
        return [p for group in optimizer.param_groups for p in group["params"]]

    def gradients(self, loss: Tensor, optimizer, name: str, **backward_options) -> bool:
        """The gradients of ``loss`` for ``optimizer``'s parameters; False (none computed) for a non-finite loss
        with on_nan=skip. ``backward_options`` go to Tensor.backward."""
        optimizer.optimizer.zero_grad(set_to_none=True)  # the torch optimizer's own: Lightning's wrapper adds only lookups
        if self.on_nan == "skip":
            if not self.all_finite(loss):
                self.skipped_updates += 1
                return False
        else:
            # Read back at the next check, not now: a host read per update would make the CPU wait for the
            # GPU's queue to drain twice a step. The weights a non-finite loss spoils are never checkpointed.
            if self.capturing():
                self.step_graphs.watch(name, loss)
            else:
                self.unchecked_losses.append((self.steps_done + 1, name, loss.detach()))
        self.backward_pass(loss if loss.dim() == 0 else loss.sum(), **backward_options)  # members' losses: a sum
        if self.logging_now or self.capturing():  # before clipping: the norm the loss produced (a tensor: no host sync)
            self.grad_norms[name.replace("loss/", "grad_norm/")] = self.gradient_norm([p.grad for p in self.parameters_of(optimizer) if p.grad is not None])
        return True

    def gradient_norm(self, gradients: List[Tensor]) -> Tensor:
        return torch.nn.utils.get_total_norm(gradients)

    def step(self, optimizer, config: OptimizerConfig) -> None:
        """Clip (when configured) and step."""
        if config.grad_clip_norm is not None:
            self.clip(optimizer, config.grad_clip_norm)
        self.step_optimizer(optimizer)
        if self.capturing():
            self.step_graphs.stepped(lambda: self.count_optimizer_step(optimizer))

    def clip(self, optimizer, max_norm: float) -> None:
        """Scale the gradients down to a total 2-norm of at most ``max_norm``."""
        self.clip_gradients(optimizer, gradient_clip_val=max_norm, gradient_clip_algorithm="norm")

    def check_losses(self) -> None:
        """Raise Diverged for the first non-finite loss since the last check, on any process (on_nan=stop): every
        process checks at the same steps and stops at the earliest divergence."""
        pending, self.unchecked_losses = self.unchecked_losses, []
        if pending:
            self.raise_first_nonfinite(pending)
        if self.step_graphs is not None:  # captured steps ran after any eager step pending here
            found = self.step_graphs.first_nonfinite()
            if found is not None:
                raise Diverged(*found)

    def raise_first_nonfinite(self, pending: List[Tuple[int, str, Tensor]]) -> None:
        # One host read; a loss per member (gan_lightning.vectorized) is finite when every member's is.
        finite = torch.isfinite(torch.stack([loss.float() for _, _, loss in pending]).reshape(len(pending), -1)).all(dim=1).tolist()
        first = finite.index(False) if False in finite else len(pending)
        earliest = first
        if self.processes > 1:
            earliest = int(self.trainer.strategy.reduce(torch.tensor(first, device=self.device), reduce_op="min"))
        if earliest == len(pending):
            return
        step, name, loss = pending[earliest]
        if earliest != first:
            raise Diverged(step, f"{name} of another process", float("nan"))
        raise Diverged(step, name, loss.item())

    def on_train_end(self) -> None:
        self.check_losses()  # a run stopped before max_steps (max_time) may not have checked its last steps
        self.check_skipped(final=True)

    def check_skipped(self, final: bool) -> None:
        """on_nan=skip: raise Diverged once more than max_skipped_fraction of the updates so far were dropped
        (judged from MIN_UPDATES_JUDGED updates on, and always at the end)."""
        if self.on_nan != "skip":
            return
        attempted = self.steps_done * (self.d_steps + self.g_steps)
        if attempted == 0 or (attempted < MIN_UPDATES_JUDGED and not final):
            return
        fraction = self.skipped_updates / attempted
        if fraction > self.max_skipped_fraction:
            what = f"fraction of updates dropped by trainer.on_nan=skip ({self.skipped_updates} of {attempted}; trainer.max_skipped_fraction={self.max_skipped_fraction})"
            raise Diverged(self.steps_done, what, round(fraction, 4))

    def all_finite(self, loss: Tensor) -> bool:
        """Whether the loss is finite on every process (on_nan=skip): all must skip together, or the next gradient
        all-reduce waits for a process that skipped (one small all-reduce per update under DDP)."""
        finite = math.isfinite(loss.item())  # one host read, as bool(torch.isfinite(loss)), without the extra kernel
        if self.processes > 1:
            finite = not self.trainer.strategy.reduce_boolean_decision(not finite, all=False)
        return finite

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA of G's weights when enabled, else G."""
        return self.generator_ema.network if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """Samples for inspection and evaluation: in eval mode, without gradients; ``labels`` for a conditional G."""
        with eval_mode(self.sampler) as sampler:
            return sampler(self.as_input(z), labels.to(self.device) if labels is not None else None)

    @torch.no_grad()
    def discriminate(self, x: Tensor, labels: Optional[Tensor] = None) -> Tensor:
        """D's outputs for inspection, as logged (probabilities for classifier objectives): in eval mode, without gradients."""
        with eval_mode(self.discriminator) as discriminator:
            return self.objective.d_output(score(discriminator, self.as_input(x), labels.to(self.device) if labels is not None else None))

    def as_input(self, x: Tensor) -> Tensor:
        """``x`` on the module's device, in its precision (trainer.precision=64-true trains in float64)."""
        return x.to(self.device, dtype=self.dtype if x.is_floating_point() else x.dtype)

    def on_save_checkpoint(self, checkpoint: Dict) -> None:
        state = TrainingState(
            steps_done=self.steps_done,
            skipped_updates=self.skipped_updates,
            cpu_rng_state=torch.get_rng_state(),
            cuda_rng_states=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        )
        if self.processes > 1:
            # Every process saves here (only rank 0 writes the file): gather each rank's own stream.
            state.rank_cpu_rng_states = gather(torch.get_rng_state(), self.device)
            state.rank_cuda_rng_states = gather(torch.cuda.get_rng_state(self.device), self.device) if self.device.type == "cuda" else None
        write_training_state(checkpoint, state)

    def on_load_checkpoint(self, checkpoint: Dict) -> None:
        state = read_training_state(checkpoint)
        self.steps_done, self.skipped_updates = state.steps_done, state.skipped_updates
        torch.set_rng_state(state.cpu_rng_state)
        if state.cuda_rng_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state.cuda_rng_states)
        if self.processes > 1:  # setup ran before Lightning restores a checkpoint
            ranks = state.rank_cpu_rng_states
            if ranks is not None and len(ranks) == self.processes:
                # clone(): torch 2.14's set_rng_state segfaults on a view into the stacked states (row 1 and up).
                torch.set_rng_state(ranks[self.global_rank].clone())
                device = self.trainer.strategy.root_device  # the module is not on it yet
                if state.rank_cuda_rng_states is not None and device.type == "cuda":
                    torch.cuda.set_rng_state(state.rank_cuda_rng_states[self.global_rank].clone(), device)
            else:  # saved with another number of processes: distinct streams derived from the saved one
                torch.manual_seed(rank_seed(int(torch.randint(2**62, ())), self.global_rank))

    def first_nonfinite_weight(self) -> Optional[str]:
        """The name of a parameter holding NaN or infinity, if any."""
        for name, parameter in self.named_parameters():
            if not torch.isfinite(parameter).all():
                return name
        return None

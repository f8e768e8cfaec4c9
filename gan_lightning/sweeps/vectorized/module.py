"""Runs that differ only in their seed, trained side by side as one computation.

S copies of G and D are held as stacked parameters (a leading member dimension) and applied as batched
matrix products (member-major forms of the layers) or through ``torch.func.vmap``; a training step's tensors
are laid out (batch, member, ...), so the GAN module's own code (minibatch splits, real and fake halves,
packing) reads them as one run's batch.
Each member has what a separate run with its seed has:

- the initial weights: each member's networks are built under its own seed by the run's own builder;
- the data order: each member's batches come from its own seeded permutation;
- the random stream: what a separate run draws from torch's global generator during training (latents,
  the interpolation weights of a gradient penalty), member i draws from a generator that starts where the
  global one stands when that run starts training;
- the losses and updates: an objective's loss is computed per member (``vmap`` over the batch of each), the
  members' losses are summed, so each member's gradients are its own; optimizers act element-wise, so each
  member's Adam moments and steps are those of its own run. Gradient clipping, logged gradient norms and
  the finiteness of losses are taken per member.

What cannot be reproduced member by member is refused (``check_vectorizable``): random numbers drawn inside
a network's forward pass (dropout), class-conditional networks, spectral normalisation (its power iteration
writes in place), skipped updates (``trainer.on_nan=skip``), data-parallel training and compiled networks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.func import vmap

from gan_lightning.errors import UserError
from gan_lightning.models.generator import Generator
from gan_lightning.runs.build import build_datamodule, build_networks, module_settings
from gan_lightning.sweeps.vectorized.checkpoints import MEMBER_STREAMS
from gan_lightning.sweeps.vectorized.data import MemberDataModule
from gan_lightning.sweeps.vectorized.layers import MEMBER_DIM, Members, per_member_norm
from gan_lightning.training.losses import Layout
from gan_lightning.training.module import GAN, parameters_of
from gan_lightning.training.scalars import measured
from gan_lightning.training.state import project_part

if TYPE_CHECKING:
    from gan_lightning.config import Config


class MemberStreams:
    """Member i's random stream: a generator holding the state torch's global generator has in a separate run
    with member i's seed when it starts training, on the device the run draws on."""

    def __init__(self, cpu_states: List[Tensor], cuda_states: Optional[List[Tensor]] = None):
        self.cpu_states, self.cuda_states = cpu_states, cuda_states
        self.generators: Dict[str, List[torch.Generator]] = {}

    @staticmethod
    def global_state() -> tuple:
        return torch.get_rng_state(), torch.cuda.get_rng_state() if torch.cuda.is_available() else None

    def on(self, device: torch.device) -> List[torch.Generator]:
        if device.type not in self.generators:
            states = self.cpu_states if device.type == "cpu" else self.cuda_states
            if states is None:
                raise UserError(f"the members' random streams were saved without {device.type} states")
            self.generators[device.type] = [torch.Generator(device).set_state(state) for state in states]
        return self.generators[device.type]

    def draw(self, device: torch.device, draw_one: Callable[[torch.Generator], Tensor]) -> Tensor:
        """Each member's draw from its own stream, laid out (batch, member, ...)."""
        return torch.stack([draw_one(generator) for generator in self.on(device)], dim=MEMBER_DIM)

    def state_dict(self) -> Dict[str, List[Tensor]]:
        """The streams as they stand (a checkpoint's)."""
        current = {kind: [g.get_state() for g in generators] for kind, generators in self.generators.items()}
        return {"cpu": current.get("cpu", self.cpu_states), "cuda": current.get("cuda", self.cuda_states)}

    @classmethod
    def from_state_dict(cls, state: Dict[str, List[Tensor]]) -> MemberStreams:
        return cls(state["cpu"], state["cuda"])


class MemberGenerator(Members):
    """The members' generators: draws each member's latents from its own stream."""

    def __init__(self, generators: Sequence[Generator], streams: MemberStreams, member_major: bool = True):
        super().__init__(generators, member_major)
        self.streams = streams

    def sample_labels(self, n: int, generator=None, device=None) -> None:
        return None  # conditional networks are refused

    def sample_latent(self, n: int, generator=None, device=None) -> Tensor:
        device = next(self.parameters()).device
        return self.streams.draw(device, lambda stream: Generator.sample_latent(self.architecture, n, stream, device))


class MemberLayout(Layout):
    """A training step's tensors laid out (batch, member, ...): a loss per member, random numbers per member."""

    def __init__(self, streams: MemberStreams):
        self.streams = streams

    def objective_term(self, loss, *outputs):
        in_dims = tuple(None if x is None else MEMBER_DIM for x in outputs)
        return vmap(loss, in_dims=in_dims)(*outputs)

    def uniform_per_sample(self, like: Tensor) -> Tensor:
        shape = (len(like), *[1] * (like.dim() - 2))
        return self.streams.draw(
            like.device, lambda stream: torch.rand(shape, generator=stream, device=like.device, dtype=like.dtype)
        )


class VectorizedGAN(GAN):
    """The GAN module over members: G and D are Members, losses are per member and summed."""

    def __init__(self, generator: MemberGenerator, discriminator: Members, **settings):
        super().__init__(generator, discriminator, layout=MemberLayout(generator.streams), **settings)
        self.members = generator.count

    @property
    def streams(self) -> MemberStreams:
        return self.generator.streams

    def gradient_norm(self, gradients: List[Tensor]) -> Tensor:
        return per_member_norm(gradients)

    def graph_generators(self) -> List[torch.Generator]:
        return self.streams.on(self.device)  # each member's latents come from its own stream

    def clip(self, optimizer, max_norm: float) -> None:
        """torch's clip_grad_norm_, each member by its own norm."""
        gradients = [p.grad for p in parameters_of(optimizer) if p.grad is not None]
        scale = (max_norm / (per_member_norm(gradients) + 1e-6)).clamp(max=1.0)
        for gradient in gradients:
            gradient.mul_(scale.view(-1, *[1] * (gradient.dim() - 1)))

    def log_step(self, d_loss, g_loss, real_out, fake_out, d_optimizer, g_optimizer) -> None:
        values = measured(self, d_loss, g_loss, real_out, fake_out)  # a value per member each
        rows = torch.stack([value.float() for value in values.values()]).T.tolist()  # one host read
        shared = {"lr/d": d_optimizer.param_groups[0]["lr"], "lr/g": g_optimizer.param_groups[0]["lr"]}
        self.latest_member_values = [{**dict(zip(values, row)), **shared} for row in rows]

    def on_save_checkpoint(self, checkpoint: Dict) -> None:
        super().on_save_checkpoint(checkpoint)
        project_part(checkpoint)[MEMBER_STREAMS] = self.streams.state_dict()

    def on_load_checkpoint(self, checkpoint: Dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.generator.streams = MemberStreams.from_state_dict(project_part(checkpoint)[MEMBER_STREAMS])
        self.losses.layout.streams = self.generator.streams


@dataclass
class Group:
    """What S runs differing in their seed train with: one module and one data module for them all."""

    seeds: List[int]
    module: VectorizedGAN
    datamodule: MemberDataModule


def check_vectorizable(cfg: Config) -> None:
    """Refuse, naming the setting, what members cannot reproduce of separate runs."""
    model, trainer = cfg.model, cfg.trainer
    d_dropout, d_dropout_input = getattr(model, "d_dropout", None), getattr(model, "d_dropout_input", None)
    refusals = {  # setting: (refused, its value, what is allowed)
        "augment": (
            cfg.augment.option != "none",
            cfg.augment.option,
            "none (an augmentation draws per image of one run); train the seeds with hydra/launcher=basic or parallel",
        ),
        "model.conditional": (model.conditional, model.conditional, "false: conditional networks draw class labels"),
        "model.d_dropout": (
            (d_dropout or 0.0) > 0,
            d_dropout,
            "0: dropout draws random numbers inside D's forward pass",
        ),
        "model.d_dropout_input": (
            (d_dropout_input or 0.0) > 0,
            d_dropout_input,
            "0: dropout draws random numbers inside D's forward pass",
        ),
        "model.d_spectral_norm": (
            model.d_spectral_norm,
            model.d_spectral_norm,
            "false: its power iteration writes into its vectors in place (out=), which vmap cannot batch",
        ),
        "trainer.on_nan": (trainer.on_nan == "skip", trainer.on_nan, "stop: a skipped update would be every member's"),
        "trainer.compile": (trainer.compile, trainer.compile, "false"),
        "trainer.devices": (
            str(trainer.devices) not in ("1", "auto") or trainer.num_nodes != 1,
            trainer.devices,
            "1 (one process trains the members)",
        ),
    }
    for setting, (refused, value, allowed) in refusals.items():
        if refused:
            raise UserError(f"{setting}={value} cannot be trained with vectorized seeds; allowed: {allowed}")


def build_group(cfg: Config, seeds: Sequence[int], member_major: bool = True) -> Group:
    """The members' networks built as separate runs with ``seeds`` build theirs, stacked; their data and streams."""
    check_vectorizable(cfg)
    generators, discriminators, datamodules, cpu_states, cuda_states = [], [], [], [], []
    for seed in seeds:
        pl.seed_everything(seed, workers=True, verbose=False)
        datamodule = build_datamodule(dataclasses.replace(cfg, seed=seed))
        datamodule.setup("fit")
        generator, discriminator = build_networks(cfg)
        cpu, cuda = MemberStreams.global_state()
        generators.append(generator), discriminators.append(discriminator), datamodules.append(datamodule)
        cpu_states.append(cpu), cuda_states.append(cuda)
    streams = MemberStreams(cpu_states, cuda_states if torch.cuda.is_available() else None)
    networks = MemberGenerator(generators, streams, member_major), Members(discriminators, member_major)
    module = VectorizedGAN(*networks, **module_settings(cfg))
    return Group(list(seeds), module, MemberDataModule(datamodules))

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

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.func import vmap

from gan_lightning.runs.build import build_datamodule, build_networks, module_settings
from gan_lightning.checkpoints import PROJECT_KEY, project_part, read_training_state, write_training_state
from gan_lightning.config import Config
from gan_lightning.errors import UserError
from gan_lightning.losses import Layout
from gan_lightning.models.generator import Generator
from gan_lightning.module import GAN

MEMBER_DIM = 1  # the members' dimension in a training step's tensors: (batch, member, ...)


def stacked_name(name: str) -> str:
    """A registrable name for the stacked copy of parameter or buffer ``name`` (dots are not allowed)."""
    return name.replace(".", "__")


class MemberLinear(nn.Linear):
    """nn.Linear over member-major rows, with a weight (members, out, in) and a bias (members, out)."""

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(self.weight.shape[0], -1, x.shape[-1])
        weight = self.weight.transpose(1, 2)
        y = torch.bmm(rows, weight) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), rows, weight)
        return y.reshape(*x.shape[:-1], y.shape[-1])


class MemberBatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d over member-major rows (samples × features): each member normalises by its own batch's
    statistics and keeps its own running ones. One torch batch norm does it, with every member's feature a
    channel of its own."""

    def forward(self, x: Tensor) -> Tensor:
        members, features = (self.running_mean if self.running_mean is not None else self.weight).shape
        channels = x.reshape(members, -1, features).transpose(0, 1).reshape(-1, members * features)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked[0])
        flat = lambda t: None if t is None else t.view(-1)  # noqa: E731  (views: the running statistics update in place)
        y = torch.nn.functional.batch_norm(
            channels, flat(self.running_mean), flat(self.running_var), flat(self.weight), flat(self.bias),
            self.training or not self.track_running_stats, momentum, self.eps,
        )  # fmt: skip
        return y.reshape(-1, members, features).transpose(0, 1).reshape(x.shape)


class MemberLayerNorm(nn.LayerNorm):
    """nn.LayerNorm over member-major rows, with each member's own affine parameters."""

    def forward(self, x: Tensor) -> Tensor:
        y = torch.nn.functional.layer_norm(x, self.normalized_shape, None, None, self.eps)
        if self.weight is None:
            return y
        rows = y.reshape(self.weight.shape[0], -1, *self.normalized_shape)
        rows = rows * self.weight.unsqueeze(1) + (self.bias.unsqueeze(1) if self.bias is not None else 0)
        return rows.reshape(x.shape)


# Layers with a member-major form, and layers whose work is per element (any layout of rows will do).
MEMBER_MAJOR_FORMS = {nn.Linear: MemberLinear, nn.BatchNorm1d: MemberBatchNorm1d, nn.LayerNorm: MemberLayerNorm}
ELEMENTWISE = (nn.Sequential, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Dropout)


def member_major_form(architecture: nn.Module) -> Optional[nn.Module]:
    """``architecture`` running on the rows of all members at once, laid one member's after another: its layers
    replaced by their member-major forms. None when a layer has no such form (vmap then runs the members)."""
    form = copy.deepcopy(architecture)
    for module in form.modules():
        if type(module) in MEMBER_MAJOR_FORMS:
            module.__class__ = MEMBER_MAJOR_FORMS[type(module)]
        elif not (isinstance(module, ELEMENTWISE) or getattr(type(module), "member_major_rows", False)):
            return None
        elif any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            return None
    return form


class Members(nn.Module):
    """S networks of one architecture as one module: each parameter and buffer stacked along a leading member
    dimension (the optimizer sees one tensor per parameter name); ``forward`` maps inputs laid out (batch,
    member, ...) to outputs laid out the same way, each member through its own weights.

    Where every layer has a member-major form (fully connected networks: linear, batch and layer norm, maxout,
    packing, activations), the members' rows run through those forms as one batch of batched matrix products;
    otherwise ``torch.func.vmap`` maps the architecture over the members. The first skips vmap's cost per call:
    a linear layer of 16 members (64 × 64, batch 128) takes 0.33 ms as one baddbmm and 0.54 ms through vmap on
    one CPU thread. ``member_major=False`` forces vmap.
    """

    def __init__(self, networks: Sequence[nn.Module], member_major: bool = True):
        super().__init__()
        self.count = len(networks)
        # The common architecture, without storage: each call supplies the members' tensors. Kept out of the
        # module's children so that parameters(), state_dict() and .to() see the stacked tensors alone.
        object.__setattr__(self, "architecture", copy.deepcopy(networks[0]).to("meta"))
        object.__setattr__(self, "member_major", member_major_form(self.architecture) if member_major else None)
        object.__setattr__(self, "vmapped", copy.deepcopy(self.architecture))  # the form vmap runs; its slots take each call's tensors
        self.parameter_names = [name for name, _ in networks[0].named_parameters()]
        self.buffer_names = [name for name, _ in networks[0].named_buffers()]
        # Where each tensor sits in the forms that run: (its owner's dict of parameters or buffers, its name there).
        self.vmapped_slots = self.slots(self.vmapped)
        self.member_major_slots = self.slots(self.member_major) if self.member_major is not None else None
        for name in self.parameter_names:
            stacked = torch.stack([network.get_parameter(name).detach() for network in networks])
            self.register_parameter(stacked_name(name), nn.Parameter(stacked))
        for name in self.buffer_names:
            self.register_buffer(stacked_name(name), torch.stack([network.get_buffer(name) for network in networks]))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            # Settings of the architecture (pack, latent_dim, sample_shape, ...), the same for every member;
            # its tensors and submodules are the members' own.
            value = getattr(object.__getattribute__(self, "architecture"), name)
            if isinstance(value, (Tensor, nn.Module)):
                raise
            return value

    def slots(self, form: nn.Module) -> List[tuple]:
        """For every parameter, then every buffer: the dict of ``form``'s module that holds it, and its key there."""
        held = [(name, "_parameters") for name in self.parameter_names] + [(name, "_buffers") for name in self.buffer_names]
        slots = []
        for name, kind in held:
            owner, _, leaf = name.rpartition(".")
            slots.append((getattr(form.get_submodule(owner), kind), leaf))
        return slots

    @staticmethod
    def fill(slots: List[tuple], tensors) -> None:
        for (holder, key), tensor in zip(slots, tensors):
            holder[key] = tensor

    def train(self, mode: bool = True) -> "Members":
        for form in (self.architecture, self.vmapped, self.member_major):
            if form is not None:
                form.train(mode)
        return super().train(mode)

    def stacked(self) -> tuple:
        parameters = {name: getattr(self, stacked_name(name)) for name in self.parameter_names}
        buffers = {name: getattr(self, stacked_name(name)) for name in self.buffer_names}
        return parameters, buffers

    def one(self, parameters: Dict[str, Tensor], buffers: Dict[str, Tensor], *inputs):
        """One member's forward pass (inside vmap): its tensors placed straight into the slots of a copy of the
        architecture that exists for this alone, so nothing is put back: torch.func.functional_call's swapping and
        restoring would cost more than a small network's forward pass."""
        self.fill(self.vmapped_slots, [*parameters.values(), *buffers.values()])
        return self.vmapped(*inputs)

    def forward(self, *inputs):
        if self.member_major is not None:
            return self.forward_member_major(*inputs)
        parameters, buffers = self.stacked()
        in_dims = (0, 0, *[None if x is None else MEMBER_DIM for x in inputs])
        return vmap(self.one, in_dims=in_dims, out_dims=MEMBER_DIM)(parameters, buffers, *inputs)

    def forward_member_major(self, *inputs):
        # The stacked tensors themselves go into the member-major layers' slots (again at every call: .to() replaces buffers).
        self.fill(self.member_major_slots, [getattr(self, stacked_name(name)) for name in self.parameter_names + self.buffer_names])
        rows = [None if x is None else x.transpose(0, MEMBER_DIM).reshape(-1, *x.shape[2:]) for x in inputs]
        out = self.member_major(*rows)
        return out.reshape(self.count, -1, *out.shape[1:]).transpose(0, MEMBER_DIM)

    def network(self, member: int) -> nn.Module:
        """Member ``member``'s network as a plain module whose parameters and buffers share storage with the
        stacked ones: it follows their updates (build it again after the module moves to another device)."""
        parameters, buffers = self.stacked()
        device = next(iter(parameters.values())).device
        network = copy.deepcopy(self.architecture).to_empty(device=device)
        for name, stacked in parameters.items():
            network.get_parameter(name).data = stacked.data[member]
        for name, stacked in buffers.items():
            owner, _, leaf = name.rpartition(".")
            setattr(network.get_submodule(owner), leaf, stacked[member])  # a registered buffer's name: it stays a buffer
        return network.train(self.training)


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
    def from_state_dict(cls, state: Dict[str, List[Tensor]]) -> "MemberStreams":
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
        return self.streams.draw(like.device, lambda stream: torch.rand(shape, generator=stream, device=like.device, dtype=like.dtype))


def per_member_norm(tensors: Sequence[Tensor]) -> Tensor:
    """The 2-norm of each member's slice of ``tensors`` together (stacked along dimension 0)."""
    return torch.stack([t.flatten(1).pow(2).sum(dim=1) for t in tensors]).sum(dim=0).sqrt()


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
        gradients = [p.grad for p in self.parameters_of(optimizer) if p.grad is not None]
        scale = (max_norm / (per_member_norm(gradients) + 1e-6)).clamp(max=1.0)
        for gradient in gradients:
            gradient.mul_(scale.view(-1, *[1] * (gradient.dim() - 1)))

    def log_step(self, d_loss, g_loss, real_out, fake_out, d_optimizer, g_optimizer) -> None:
        measured = self.measured(d_loss, g_loss, real_out, fake_out)  # a value per member each
        rows = torch.stack([value.float() for value in measured.values()]).T.tolist()  # one host read
        shared = {"lr/d": d_optimizer.param_groups[0]["lr"], "lr/g": g_optimizer.param_groups[0]["lr"]}
        self.latest_member_values = [{**dict(zip(measured, row)), **shared} for row in rows]

    def on_save_checkpoint(self, checkpoint: Dict) -> None:
        super().on_save_checkpoint(checkpoint)
        project_part(checkpoint)[MEMBER_STREAMS] = self.streams.state_dict()

    def on_load_checkpoint(self, checkpoint: Dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.generator.streams = MemberStreams.from_state_dict(project_part(checkpoint)[MEMBER_STREAMS])
        self.losses.layout.streams = self.generator.streams


# Checkpoints. A group's checkpoint is a separate run's with every tensor of a member stacked: weights and buffers
# (stacked names), the optimizers' moments, the data positions (one per member) and the random streams. Splitting
# it gives each member the checkpoint its separate run would have written; stacking the checkpoints of separate
# runs gives the group's.
STACKED_KEYS = ("state_dict", "optimizer_states", "loops")
MEMBER_STREAMS = "member_streams"  # in the project's part of a group's checkpoint


def plain_name(name: str) -> str:
    """``generator.net__0__weight`` (a Members' stacked tensor) → ``generator.net.0.weight`` (the plain network's)."""
    network, _, stacked = name.rpartition(".")
    return f"{network}.{stacked.replace('__', '.')}" if network else stacked.replace("__", ".")


def stacked_key(name: str) -> str:
    """The inverse of plain_name for a parameter or buffer of G, D or G's EMA copy."""
    for network in ("generator_ema.network.", "generator.", "discriminator."):
        if name.startswith(network):
            return network + stacked_name(name[len(network) :])
    raise UserError(f"{name} is not a weight of G, D or G's EMA: the checkpoint is not one of a GAN run")


def with_loader_states(loops: Dict, states) -> Dict:
    """``loops`` (Lightning's loop state) with the training data's position replaced by ``states``."""
    loops = copy.deepcopy(loops)
    loops["fit_loop"]["state_dict"]["combined_loader"] = [states]
    return loops


def member_checkpoint(group: Dict, member: int) -> Dict:
    """What a separate run with member ``member``'s seed would have saved at this step (its own run config, W&B
    run id and callbacks' state are the caller's to add)."""
    checkpoint = {key: value for key, value in group.items() if key not in STACKED_KEYS}
    checkpoint[PROJECT_KEY] = {key: value for key, value in group[PROJECT_KEY].items() if key != MEMBER_STREAMS}
    checkpoint["state_dict"] = {plain_name(name): value[member].clone() for name, value in group["state_dict"].items()}
    checkpoint["optimizer_states"] = [
        {"param_groups": copy.deepcopy(optimizer["param_groups"]),
         "state": {index: {key: value if key == "step" else value[member].clone() for key, value in state.items()}
                   for index, state in optimizer["state"].items()}}
        for optimizer in group["optimizer_states"]
    ]  # fmt: skip
    (members,) = group["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    checkpoint["loops"] = with_loader_states(group["loops"], members["members"][member])
    streams = group[PROJECT_KEY][MEMBER_STREAMS]
    state = read_training_state(group)
    state.cpu_rng_state = streams["cpu"][member]
    state.cuda_rng_states = [streams["cuda"][member]] if streams["cuda"] is not None else []
    write_training_state(checkpoint, state)
    return checkpoint


def group_checkpoint(members: Sequence[Dict]) -> Dict:
    """The checkpoint of a group whose members are the runs that saved ``members`` (at the same step)."""
    steps = sorted({read_training_state(member).steps_done for member in members})
    if len(steps) != 1:
        raise UserError(f"the members' checkpoints are at different steps ({', '.join(map(str, steps))}): they cannot train as one group")
    first = members[0]
    group = {key: value for key, value in first.items() if key not in STACKED_KEYS}
    group["state_dict"] = {stacked_key(name): torch.stack([member["state_dict"][name] for member in members]) for name in first["state_dict"]}
    group["optimizer_states"] = [
        {"param_groups": copy.deepcopy(optimizer["param_groups"]),
         "state": {index: {key: value if key == "step" else torch.stack([member["optimizer_states"][o]["state"][index][key] for member in members])
                           for key, value in state.items()}
                   for index, state in optimizer["state"].items()}}
        for o, optimizer in enumerate(first["optimizer_states"])
    ]  # fmt: skip
    positions = [member["loops"]["fit_loop"]["state_dict"]["combined_loader"][0] for member in members]
    group["loops"] = with_loader_states(first["loops"], {"members": positions})
    states = [read_training_state(member) for member in members]
    cuda = [state.cuda_rng_states[0] for state in states] if all(state.cuda_rng_states for state in states) else None
    group[PROJECT_KEY] = {**first[PROJECT_KEY], MEMBER_STREAMS: {"cpu": [state.cpu_rng_state for state in states], "cuda": cuda}}
    return group


class MemberBatches:
    """Each member's training batches, laid out (batch, member, ...)."""

    def __init__(self, loaders: Sequence):
        self.loaders = loaders

    def __len__(self) -> int:
        return len(self.loaders[0])

    def __iter__(self):
        for batches in zip(*self.loaders):
            yield torch.stack(batches, dim=MEMBER_DIM)

    def state_dict(self) -> Dict:
        return {"members": [loader.state_dict() for loader in self.loaders]}

    def load_state_dict(self, state: Dict) -> None:
        for loader, own in zip(self.loaders, state["members"]):
            loader.load_state_dict(own)


class MemberDataModule(pl.LightningDataModule):
    """The members' data modules, each with its own seed, serving MemberBatches."""

    def __init__(self, datamodules: Sequence[pl.LightningDataModule]):
        super().__init__()
        self.datamodules = datamodules

    def setup(self, stage: str) -> None:
        for datamodule in self.datamodules:
            datamodule.setup(stage)

    def train_dataloader(self) -> MemberBatches:
        for datamodule in self.datamodules:
            datamodule.trainer = self.trainer
        return MemberBatches([datamodule.train_dataloader() for datamodule in self.datamodules])


@dataclass
class Group:
    """What S runs differing in their seed train with: one module and one data module for them all."""

    seeds: List[int]
    module: VectorizedGAN
    datamodule: MemberDataModule


def check_vectorizable(cfg: Config) -> None:
    """Refuse, naming the setting, what members cannot reproduce of separate runs."""
    refusals = {
        "model.conditional": (cfg.model.conditional, "false: conditional networks draw class labels"),
        "model.d_dropout": (getattr(cfg.model, "d_dropout", 0.0) > 0, "0: dropout draws random numbers inside D's forward pass"),
        "model.d_dropout_input": (getattr(cfg.model, "d_dropout_input", 0.0) > 0, "0: dropout draws random numbers inside D's forward pass"),
        "model.d_spectral_norm": (cfg.model.d_spectral_norm, "false: its power iteration writes into its vectors in place (out=), which vmap cannot batch"),
        "trainer.on_nan": (cfg.trainer.on_nan == "skip", "stop: a skipped update would be every member's"),
        "trainer.compile": (cfg.trainer.compile, "false"),
        "trainer.devices": (str(cfg.trainer.devices) not in ("1", "auto") or cfg.trainer.num_nodes != 1, "1 (one process trains the members)"),
    }
    for setting, (refused, allowed) in refusals.items():
        if refused:
            value = getattr(cfg.model, setting.split(".")[1], None) if setting.startswith("model.") else getattr(cfg.trainer, setting.split(".")[1])
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

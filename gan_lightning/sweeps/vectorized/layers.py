"""S networks of one architecture as one module (``Members``): stacked parameters, applied as batched matrix products
(the member-major forms of the layers) or through ``torch.func.vmap``."""

from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.func import vmap

MEMBER_DIM = 1  # the members' dimension in a training step's tensors: (batch, member, ...)
SETTING_TYPES = (bool, int, float, str, tuple, type(None))


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


def member_major_layer(layer: nn.Module) -> Optional[nn.Module]:
    """A new layer computing what ``layer`` computes, over member-major rows (its tensors are supplied at each call);
    None for a layer without such a form."""
    settings = {"device": "meta"}
    if type(layer) is nn.Linear:
        form = MemberLinear(layer.in_features, layer.out_features, bias=layer.bias is not None, **settings)
    elif type(layer) is nn.BatchNorm1d:
        form = MemberBatchNorm1d(
            layer.num_features, layer.eps, layer.momentum, layer.affine, layer.track_running_stats, **settings
        )
    elif type(layer) is nn.LayerNorm:
        form = MemberLayerNorm(
            layer.normalized_shape, layer.eps, layer.elementwise_affine, bias=layer.bias is not None, **settings
        )
    else:
        return None
    return form.train(layer.training)


# Layers whose work is per element: any layout of rows will do.
ELEMENTWISE = (nn.Sequential, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Dropout)


def member_major_form(architecture: nn.Module) -> Optional[nn.Module]:
    """``architecture`` running on the rows of all members at once, laid one member's after another: its linear and
    normalisation layers replaced by their member-major forms. None when a layer has no such form (vmap then runs
    the members)."""
    form = copy.deepcopy(architecture)
    for parent in list(form.modules()):
        for name, child in list(parent.named_children()):
            replacement = member_major_layer(child)
            if replacement is not None:
                setattr(parent, name, replacement)
    for module in form.modules():
        if isinstance(module, (MemberLinear, MemberBatchNorm1d, MemberLayerNorm)):
            continue
        if not (isinstance(module, ELEMENTWISE) or getattr(type(module), "member_major_rows", False)):
            return None
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
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
        object.__setattr__(
            self, "vmapped", copy.deepcopy(self.architecture)
        )  # the form vmap runs; its slots take each call's tensors
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
        # The architecture's settings (latent_dim, sample_shape, pack, ...), the same for every member: its public plain
        # attributes. Its tensors and submodules are the members' own.
        for name, value in vars(networks[0]).items():
            if not name.startswith("_") and name != "training" and type(value) in SETTING_TYPES:
                setattr(self, name, value)

    def slots(self, form: nn.Module) -> List[tuple]:
        """For every parameter, then every buffer: the dict of ``form``'s module that holds it, and its key there."""
        held = [(name, "_parameters") for name in self.parameter_names] + [
            (name, "_buffers") for name in self.buffer_names
        ]
        slots = []
        for name, kind in held:
            owner, _, leaf = name.rpartition(".")
            slots.append((getattr(form.get_submodule(owner), kind), leaf))
        return slots

    @staticmethod
    def fill(slots: List[tuple], tensors) -> None:
        for (holder, key), tensor in zip(slots, tensors):
            holder[key] = tensor

    def train(self, mode: bool = True) -> Members:
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
        self.fill(
            self.member_major_slots,
            [getattr(self, stacked_name(name)) for name in self.parameter_names + self.buffer_names],
        )
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
            setattr(
                network.get_submodule(owner), leaf, stacked[member]
            )  # a registered buffer's name: it stays a buffer
        return network.train(self.training)


def per_member_norm(tensors: Sequence[Tensor]) -> Tensor:
    """The 2-norm of each member's slice of ``tensors`` together (stacked along dimension 0)."""
    return torch.stack([t.flatten(1).pow(2).sum(dim=1) for t in tensors]).sum(dim=0).sqrt()

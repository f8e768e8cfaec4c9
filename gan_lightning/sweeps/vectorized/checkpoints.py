"""A group's checkpoint is a separate run's with every tensor of a member stacked: weights and buffers (stacked names),
the optimizers' moments, the data positions (one per member) and the random streams. Splitting it gives each member
the checkpoint its separate run would have written; stacking the checkpoints of separate runs gives the group's."""

from __future__ import annotations

from typing import Dict, Sequence

import torch

from gan_lightning.adapter.checkpoint_layout import (
    LOOPS,
    OPTIMIZERS,
    WEIGHTS,
    data_position,
    map_optimizer_states,
    optimizer_states,
    weights,
    with_data_position,
    without_run_parts,
)  # fmt: skip
from gan_lightning.errors import UserError
from gan_lightning.sweeps.vectorized.layers import stacked_name
from gan_lightning.training.state import PROJECT_KEY, read_training_state, write_training_state

MEMBER_STREAMS = "member_streams"  # in the project's part of a group's checkpoint: each member's random streams


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


def member_checkpoint(group: Dict, member: int) -> Dict:
    """What a separate run with member ``member``'s seed would have saved at this step (its own run config, W&B
    run id and callbacks' state are the caller's to add)."""
    checkpoint = without_run_parts(group)
    checkpoint[PROJECT_KEY] = {key: value for key, value in group[PROJECT_KEY].items() if key != MEMBER_STREAMS}
    checkpoint[WEIGHTS] = {plain_name(name): value[member].clone() for name, value in weights(group).items()}
    checkpoint[OPTIMIZERS] = map_optimizer_states([optimizer_states(group)], lambda stacked: stacked[0][member].clone())
    checkpoint[LOOPS] = with_data_position(group, data_position(group)["members"][member])
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
        raise UserError(
            f"the members' checkpoints are at different steps ({', '.join(map(str, steps))}): they cannot train as one group"
        )
    first = members[0]
    group = without_run_parts(first)
    group[WEIGHTS] = {
        stacked_key(name): torch.stack([weights(member)[name] for member in members]) for name in weights(first)
    }
    group[OPTIMIZERS] = map_optimizer_states([optimizer_states(member) for member in members], torch.stack)
    group[LOOPS] = with_data_position(first, {"members": [data_position(member) for member in members]})
    states = [read_training_state(member) for member in members]
    cuda = [state.cuda_rng_states[0] for state in states] if all(state.cuda_rng_states for state in states) else None
    group[PROJECT_KEY] = {
        **first[PROJECT_KEY],
        MEMBER_STREAMS: {"cpu": [state.cpu_rng_state for state in states], "cuda": cuda},
    }
    return group

"""Where Lightning keeps the parts of a checkpoint: the module's weights, the optimizers' states and the loops' state
(the training data's position among them). Every key of Lightning's checkpoint layout the package reads or writes
is named here; tests/test_adapter.py checks them on a checkpoint the installed Lightning wrote."""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, List

WEIGHTS = "state_dict"
OPTIMIZERS = "optimizer_states"
LOOPS = "loops"
CALLBACKS = "callbacks"  # each callback's state_dict, by its state_key
# The parts that belong to one run's networks, data and optimizers (a vectorized group stacks them per member).
PER_RUN = (WEIGHTS, OPTIMIZERS, LOOPS)


def weights(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    """The LightningModule's state dict."""
    return checkpoint[WEIGHTS]


def optimizer_states(checkpoint: Dict[str, Any]) -> List[Dict[str, Any]]:
    return checkpoint[OPTIMIZERS]


def callback_states(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    return checkpoint.get(CALLBACKS, {})


def set_callback_states(checkpoint: Dict[str, Any], states: Dict[str, Any]) -> None:
    checkpoint[CALLBACKS] = states


def without_run_parts(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    """The checkpoint without ``PER_RUN`` (what every member of a group shares: versions, hyperparameters, callbacks' states)."""
    return {key: value for key, value in checkpoint.items() if key not in PER_RUN}


def data_position(checkpoint: Dict[str, Any]) -> Any:
    """Where the training data stood: the state its loader's ``state_dict`` returned."""
    (position,) = checkpoint[LOOPS]["fit_loop"]["state_dict"]["combined_loader"]
    return position


def with_data_position(checkpoint: Dict[str, Any], position: Any) -> Dict[str, Any]:
    """``checkpoint``'s loops' state with the training data's position replaced by ``position``."""
    loops = copy.deepcopy(checkpoint[LOOPS])
    loops["fit_loop"]["state_dict"]["combined_loader"] = [position]
    return loops


def map_optimizer_states(
    states: List[List[Dict[str, Any]]], tensors: Callable[[List[Any]], Any]
) -> List[Dict[str, Any]]:
    """One optimizer state list from several of the same optimizers (one per run): each per-parameter tensor is
    ``tensors`` of the runs' tensors, the step counts and parameter groups are the first run's."""
    merged = []
    for o, optimizer in enumerate(states[0]):
        merged.append({
            "param_groups": copy.deepcopy(optimizer["param_groups"]),
            "state": {index: {key: value if key == "step" else tensors([run[o]["state"][index][key] for run in states]) for key, value in state.items()}
                      for index, state in optimizer["state"].items()},
        })  # fmt: skip
    return merged

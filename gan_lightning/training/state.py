"""What this project keeps in a checkpoint beside Lightning's weights and optimizer and loop states, written and read
only through this module: ``checkpoint["gan_lightning"]`` holds

- the training state (``TrainingState``): training steps done, updates skipped, every random stream;
- the run: its resolved config with the option chosen in each config group (``config``, whose ``choices`` entry
  names them), and the id of its W&B run (``run_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, List, Optional

from gan_lightning.lazy import torch
from gan_lightning.training.distributed import gather, rank_seed

PROJECT_KEY = "gan_lightning"  # present in every checkpoint this project writes


@dataclass
class TrainingState:
    """Where training stands, beyond weights and optimizers: a resumed run continues exactly from it."""

    steps_done: int  # completed training steps (iterations of Algorithm 1)
    skipped_updates: int  # updates dropped for a non-finite loss (trainer.on_nan=skip)
    # The random streams make a resumed run draw the latents an uninterrupted one would have drawn.
    cpu_rng_state: torch.Tensor
    cuda_rng_states: List[torch.Tensor]
    # Under DDP, each rank's own stream, stacked in rank order (None in single-process runs).
    rank_cpu_rng_states: Optional[torch.Tensor] = None
    rank_cuda_rng_states: Optional[torch.Tensor] = None
    # Adaptive augmentation's p and the running sum behind r_t (augment=ada), so a resumed run continues with its p.
    augment: Optional[Dict[str, Any]] = None


def project_part(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    return checkpoint.setdefault(PROJECT_KEY, {})


def write_training_state(checkpoint: Dict[str, Any], state: TrainingState) -> None:
    # The fields themselves, not dataclasses.asdict: that deep-copies every random-state tensor first.
    project_part(checkpoint).update({f.name: getattr(state, f.name) for f in fields(TrainingState)})


def read_training_state(checkpoint: Dict[str, Any]) -> TrainingState:
    part = checkpoint[PROJECT_KEY]
    return TrainingState(**{f.name: part.get(f.name) for f in fields(TrainingState)})


def write_run(checkpoint: Dict[str, Any], config: Dict[str, Any], run_id: Optional[str]) -> None:
    """The run's resolved config (with ``choices``) and its W&B run id: evaluate and sample rebuild the run from the
    config, a resume continues the same W&B run."""
    project_part(checkpoint).update(config=config, run_id=run_id)


def steps_done(checkpoint: Dict[str, Any]) -> int:
    return int(checkpoint[PROJECT_KEY]["steps_done"])


def stored_config(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    """The resolved config of the run that wrote ``checkpoint`` (empty when it carries none)."""
    return checkpoint[PROJECT_KEY].get("config") or {}


def stored_run_id(checkpoint: Dict[str, Any]) -> Optional[str]:
    return checkpoint[PROJECT_KEY].get("run_id")


def save_training_state(module, checkpoint: Dict[str, Any]) -> None:
    """The GAN module's training state into ``checkpoint``. Under DDP every process saves (only rank 0 writes the
    file): each rank's own random stream is gathered."""
    state = TrainingState(
        steps_done=module.steps_done,
        skipped_updates=module.nonfinite.skipped,
        cpu_rng_state=torch.get_rng_state(),
        cuda_rng_states=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        augment=module.losses.adaptive.state_dict() if module.losses.adaptive is not None else None,
    )
    if module.processes > 1:
        state.rank_cpu_rng_states = gather(torch.get_rng_state(), module.device)
        state.rank_cuda_rng_states = (
            gather(torch.cuda.get_rng_state(module.device), module.device) if module.device.type == "cuda" else None
        )
    write_training_state(checkpoint, state)


def load_training_state(module, checkpoint: Dict[str, Any]) -> None:
    """The GAN module's training state from ``checkpoint``: steps, skipped updates and random streams (each rank its
    own, when the checkpoint has as many as there are processes now)."""
    state = read_training_state(checkpoint)
    module.steps_done, module.nonfinite.skipped = state.steps_done, state.skipped_updates
    if state.augment is not None and module.losses.adaptive is not None:
        module.losses.adaptive.load_state_dict(state.augment)
    torch.set_rng_state(state.cpu_rng_state)
    if state.cuda_rng_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state.cuda_rng_states)
    if module.processes > 1:  # setup ran before Lightning restores a checkpoint
        ranks, rank = state.rank_cpu_rng_states, module.global_rank
        if ranks is not None and len(ranks) == module.processes:
            # clone(): torch 2.14's set_rng_state segfaults on a view into the stacked states (row 1 and up).
            torch.set_rng_state(ranks[rank].clone())
            device = module.trainer.strategy.root_device  # the module is not on it yet
            if state.rank_cuda_rng_states is not None and device.type == "cuda":
                torch.cuda.set_rng_state(state.rank_cuda_rng_states[rank].clone(), device)
        else:  # saved with another number of processes: distinct streams derived from the saved one
            torch.manual_seed(rank_seed(int(torch.randint(2**62, ())), rank))

"""The training step as a CUDA graph (``trainer.cuda_graph=true``): captured once, replayed every step.

A small GAN's step is a few hundred kernels of a few microseconds each. Issued one at a time from Python, the
GPU waits for the CPU: 4.5-6 ms per step on an H200 whatever the model. A graph replay issues them all at once.

What changes from step to step without changing the work reaches the graph through memory it reads: the real
batch (copied into a static buffer), the latents (drawn inside the graph by PyTorch's graph-safe random number
generation, the same numbers an eager step draws) and the optimizers' state (Adam with ``capturable=True``
keeps its step count on the GPU). What changes the work itself is a *variant*: whether R1 is due at this
step's D updates, whether the EMA has started, the batch's shape. Each variant is captured the first time it is
due, after a few eager steps of its own that initialise what is created lazily (cuBLAS workspaces, optimizer
state).

A graph reads no host value, so the finiteness of the losses is accumulated on the GPU: for each update of the
step, the first step at which its loss was not finite. The module reads it at its usual checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

log = logging.getLogger("gan_lightning")

# Eager steps of a variant before it is captured: lazy initialisation happens there, outside the capture.
WARMUP_STEPS = 3

StepOutputs = Tuple[Tuple[Tensor, ...], Dict[str, Tensor]]  # the step's tensors, and its named extras (gradient norms)


def as_tuple(batch) -> Tuple[Tensor, ...]:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def like(batch, tensors: Tuple[Tensor, ...]):
    """``tensors`` in the structure of ``batch`` (a tensor, or a tuple or list of them)."""
    return tensors if isinstance(batch, (tuple, list)) else tensors[0]


def on_side_stream(device: torch.device, work: Callable, *args):
    """``work(*args)`` on a stream of its own, ordered after and before the current stream's work: PyTorch asks this
    of the eager warm-up steps before a capture."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        result = work(*args)
    torch.cuda.current_stream(device).wait_stream(stream)
    return result


@dataclass
class Captured:
    graph: torch.cuda.CUDAGraph
    inputs: Tuple[Tensor, ...]  # the static batch the graph reads
    outputs: StepOutputs  # the tensors the graph writes
    step_counts: List[Callable[[], None]] = field(default_factory=list)  # each counts an optimizer step the graph takes


class StepGraphs:
    """Captured training steps, one per variant, and the non-finite-loss record they share.

    ``generators`` are the CUDA generators other than the default one that the step draws from; ``watched`` is
    the number of losses one step checks (one per update). ``run`` takes the module's step (the D and G updates
    and the EMA) as ``updates``, a function of the batch returning the step's tensors.
    """

    def __init__(self, device: torch.device, watched: int, generators: Sequence[torch.Generator] = ()):
        self.device, self.generators = device, list(generators)
        self.graphs: Dict[Hashable, Captured] = {}
        self.eager_steps: Dict[Hashable, int] = {}
        self.capturing: Optional[Captured] = None
        self.watched_names: List[str] = [""] * watched
        self.slot = 0  # the next watched loss of the step being captured
        # The steps done, counted inside the graph: the step a non-finite loss is charged to.
        self.step = torch.zeros((), dtype=torch.int64, device=device)
        self.step_synced_at: Optional[int] = None
        # Per watched loss: the first step at which it was not finite (0: none yet), and its value then.
        self.first_nonfinite_step = torch.zeros(watched, dtype=torch.int64, device=device)
        self.first_nonfinite_value = torch.zeros(watched, dtype=torch.float32, device=device)

    # ---- during capture: what the module's step calls -------------------------------------------------------
    def watch(self, name: str, loss: Tensor) -> None:
        """Record, inside the graph, whether ``loss`` is finite at this step."""
        slot, self.slot = self.slot, self.slot + 1
        self.watched_names[slot] = name
        loss = loss.detach().float()
        new = ~torch.isfinite(loss).all() & (self.first_nonfinite_step[slot] == 0)
        self.first_nonfinite_step[slot] = torch.where(new, self.step, self.first_nonfinite_step[slot])
        self.first_nonfinite_value[slot] = torch.where(new, loss.sum(), self.first_nonfinite_value[slot])

    def stepped(self, count: Callable[[], None]) -> None:
        """An optimizer took a step inside the capture; ``count`` counts it (as Lightning's wrapper does) at every replay."""
        self.capturing.step_counts.append(count)

    # ---- every step -----------------------------------------------------------------------------------------
    def run(self, variant: Hashable, batch, steps_done: int, updates: Callable[..., StepOutputs]) -> StepOutputs:
        """One training step (the ``steps_done + 1``-th): eager while ``variant`` warms up, then captured and
        replayed."""
        # A batch of another shape (a data loader's short last batch) is a variant of its own: a graph's buffers are fixed.
        variant = (variant, tuple(tuple(t.shape) for t in as_tuple(batch)))
        captured = self.graphs.get(variant)
        if captured is None:
            done = self.eager_steps.get(variant, 0)
            if done < WARMUP_STEPS:
                self.eager_steps[variant] = done + 1
                return on_side_stream(self.device, updates, batch)
            captured = self.capture(variant, batch, updates)
            log.info(
                "training step %d captured as a CUDA graph (variant %d of the run: %s)",
                steps_done + 1,
                len(self.graphs),
                variant,
            )
        else:
            for tensor, value in zip(captured.inputs, as_tuple(batch)):
                tensor.copy_(value, non_blocking=True)
            for count in captured.step_counts:
                count()
        if self.step_synced_at != steps_done:  # eager steps ran since the last replay
            self.step.fill_(steps_done)
        captured.graph.replay()
        self.step_synced_at = steps_done + 1
        return captured.outputs

    def capture(self, variant: Hashable, batch, updates: Callable[..., StepOutputs]) -> Captured:
        inputs = tuple(t.clone() for t in as_tuple(batch))
        captured = Captured(torch.cuda.CUDAGraph(), inputs, ((), {}))
        for generator in self.generators:
            captured.graph.register_generator_state(generator)
        self.capturing, self.slot = captured, 0
        try:
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(captured.graph):
                self.step.add_(1)
                captured.outputs = updates(like(batch, inputs))
        finally:
            self.capturing = None
        self.graphs[variant] = captured
        return captured

    # ---- at the module's checks -----------------------------------------------------------------------------
    def first_nonfinite(self) -> Optional[Tuple[int, str, float]]:
        """(step, loss name, value) of the earliest non-finite loss the graphs recorded, if any: one host read."""
        steps = self.first_nonfinite_step.tolist()
        found = [(step, slot) for slot, step in enumerate(steps) if step > 0]
        if not found:
            return None
        step, slot = min(found)
        return step, self.watched_names[slot], float(self.first_nonfinite_value[slot])

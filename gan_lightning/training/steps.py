"""How a training step runs: as Python issues its updates (``EagerSteps``), or captured as CUDA graphs and replayed
(``CapturedSteps``, ``trainer.cuda_graph=true``; the graphs themselves are ``cuda_graphs.StepGraphs``).

The GAN module hands its executor the step's updates as a function of the batch; what a captured step needs to know
beyond that (the regularisation penalties and D updates that make its variant, whether the EMA copies G, the random
generators it draws from) it is given when it is made (``step_executor``).
"""

from __future__ import annotations

from typing import Callable, Hashable, List, Optional, Tuple

import torch
from torch import Tensor

from gan_lightning.errors import UserError
from gan_lightning.training.cuda_graphs import StepGraphs, StepOutputs


class EagerSteps:
    """Each step's updates run as they are issued; nothing to replay, nothing recorded on the device."""

    capturing = False

    def measures(self, logging: bool) -> bool:
        """Whether the step computes the values a logging step hands to the loggers (gradient norms)."""
        return logging

    def run(self, batch, steps_done: int, updates: Callable[..., StepOutputs]) -> StepOutputs:
        return updates(batch)

    def stepped(self, count: Callable[[], None]) -> None:
        """An optimizer stepped: Lightning counted it already."""

    def watch(self, name: str, loss: Tensor) -> None:
        raise AssertionError("only a step being captured records its losses on the device")

    def first_nonfinite(self) -> Optional[Tuple[int, str, float]]:
        return None


class CapturedSteps:
    """Each variant of the step captured once (after a few eager steps of its own) and replayed; the finiteness of
    every update's loss recorded on the GPU (``watch``), since a replay reads no host value."""

    def __init__(self, device, watched: int, generators: List[torch.Generator], penalties, d_steps: int,
                 ema_copying: Callable[[], bool]):  # fmt: skip
        self.penalties, self.d_steps, self.ema_copying = penalties, d_steps, ema_copying
        self.graphs = StepGraphs(device, watched, generators)

    @property
    def capturing(self) -> bool:
        return self.graphs.capturing is not None

    def measures(self, logging: bool) -> bool:
        """A step being captured computes every value a logging step would: it is replayed at logging steps too."""
        return logging or self.capturing

    def run(self, batch, steps_done: int, updates: Callable[..., StepOutputs]) -> StepOutputs:
        return self.graphs.run(self.variant(steps_done), batch, steps_done, updates)

    def variant(self, steps_done: int) -> Hashable:
        """What decides the work of the next step beyond its tensors' values: the penalties due at each of its D
        updates, and whether the EMA still copies G. A captured step is replayed only for its own variant."""
        first_update = steps_done * self.d_steps
        due = tuple(penalty.due(first_update + i) for penalty in self.penalties for i in range(self.d_steps))
        return due, self.ema_copying()

    def stepped(self, count: Callable[[], None]) -> None:
        """An optimizer stepped: inside a capture, its count is replayed with the graph (Lightning counts steps in Python)."""
        if self.capturing:
            self.graphs.stepped(count)

    def watch(self, name: str, loss: Tensor) -> None:
        self.graphs.watch(name, loss)

    def first_nonfinite(self) -> Optional[Tuple[int, str, float]]:
        return self.graphs.first_nonfinite()


def step_executor(module) -> EagerSteps | CapturedSteps:
    """The executor ``module``'s settings ask for, checked against where it trains (at the start of training)."""
    if not module.cuda_graph:
        return EagerSteps()
    if module.device.type != "cuda":
        raise UserError(
            f"trainer.cuda_graph=true captures the step on a CUDA GPU; this run trains on {module.device.type}: trainer.cuda_graph=false"
        )
    if not module.direct_updates:
        raise UserError(
            "trainer.cuda_graph=true needs backward passes and optimizer steps that call torch directly: one device, 32-true or "
            "bf16-mixed, trainer.fast_path=true and no callback implementing on_before_backward, on_after_backward or "
            "on_before_optimizer_step"
        )
    # One loss checked per update (the simultaneous update's two losses stand for the last D and the G update).
    ema_copying = (lambda: module.ema_warming_up()) if module.generator_ema is not None else (lambda: False)
    return CapturedSteps(module.device, module.d_steps + module.g_steps, module.graph_generators(),
                         module.losses.penalties, module.d_steps, ema_copying)  # fmt: skip

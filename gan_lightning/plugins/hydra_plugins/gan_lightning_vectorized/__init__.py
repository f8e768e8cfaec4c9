"""``hydra/launcher=vectorized`` as Hydra finds launchers: a class in the ``hydra_plugins`` namespace package.
gan_lightning puts this folder's parent on sys.path when it is imported; the launcher's work is in
gan_lightning.sweeps.vectorized.launcher."""

from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class VectorizedLauncher(Launcher):
    """Jobs of a multirun that differ only in ``seed`` train as one vectorized group each; groups (and jobs that
    cannot be grouped) run through the launcher that ``groups`` names: basic, parallel or slurm."""

    def __init__(self, groups: str = "basic", max_members: Optional[int] = None, **inner: Any) -> None:
        self.groups, self.max_members, self.inner = groups, max_members, inner
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from gan_lightning.sweeps.vectorized.launcher import launch_groups
        from gan_lightning.sweeps.vectorized.members import run_group

        return launch_groups(self, job_overrides, initial_job_idx, run_group)

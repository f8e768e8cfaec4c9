"""``hydra/sweeper=search`` as Hydra finds sweepers: a class in the ``hydra_plugins`` namespace package. The sweep's
work is in gan_lightning.sweeps.search.sweeper."""

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class SearchSweeper(Sweeper):
    """An Optuna study: trials launched one by one as workers free, pruned on the metrics they measure, kept in a
    database (docs/search.md)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings  # read again from the config in setup, where interpolations resolve
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from gan_lightning.sweeps.search.sweeper import Search

        return Search(self.config, self.launcher).sweep(arguments)

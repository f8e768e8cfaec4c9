"""``hydra.sweeper`` of ``hydra/sweeper=search`` as typed settings, checked, and the Optuna objects they name.

The sweep and every trial read the same node (a trial finds it in its own Hydra config), so both build the same
pruner and open the same study.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lightning.errors import UserError, invalid

SWEEPER_TARGET = "hydra_plugins.gan_lightning_search.SearchSweeper"
DIRECTIONS = ("minimize", "maximize")
# The sampler and pruner options of conf/hydra/sweeper/: a setting names one by its file.
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "grid": "GridSampler", "cmaes": "CmaEsSampler"}
PRUNERS = {"none": "NopPruner", "median": "MedianPruner", "successive_halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner"}  # fmt: skip
# A trial is taken for lost (its process killed with its sweep, its node gone) when neither it nor the sweep that
# launched it has written its heartbeat for this many heartbeat intervals.
STALE_AFTER_BEATS = 4


def is_search(hydra_config: Any) -> bool:
    """Whether a sweep (or the job of one) runs under hydra/sweeper=search."""
    return OmegaConf.select(hydra_config, "sweeper._target_", default=None) == SWEEPER_TARGET


@dataclass
class SearchSettings:
    directions: List[str]
    study_name: str
    storage: Optional[str]
    n_trials: int
    n_jobs: Optional[int]
    max_failure_rate: float
    heartbeat_s: float
    retries: int
    sampler: Any
    pruner: Any
    params: Any

    @classmethod
    def of(cls, node: Any) -> SearchSettings:
        """The settings of a ``hydra.sweeper`` node; UserError naming the first that is not allowed."""
        from gan_lightning.study.storage import DEFAULT_STUDY

        direction = OmegaConf.to_object(node.direction) if OmegaConf.is_config(node.direction) else node.direction
        directions = [direction] if isinstance(direction, str) else list(direction or [])
        for value in directions:
            if value not in DIRECTIONS:
                raise invalid(
                    "hydra.sweeper.direction", direction, "minimize, maximize, or a list of them (one per objective)"
                )
        if not directions:
            raise invalid("hydra.sweeper.direction", direction, "minimize, maximize, or a list of them")
        settings = cls(
            directions=directions,
            study_name=str(node.get("study_name") or DEFAULT_STUDY),
            storage=None if node.get("storage") is None else str(node.storage),
            n_trials=int(node.n_trials),
            n_jobs=None if node.get("n_jobs") is None else int(node.n_jobs),
            max_failure_rate=float(node.get("max_failure_rate", 1.0)),
            heartbeat_s=float(node.get("heartbeat_s", 30)),
            retries=int(node.get("retries", 2)),
            sampler=node.get("sampler"),
            pruner=pruner_node(node.get("pruner")),
            params=node.get("params"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.n_trials < 1:
            raise invalid("hydra.sweeper.n_trials", self.n_trials, "a positive number of trials")
        if self.n_jobs is not None and self.n_jobs < 1:
            raise invalid(
                "hydra.sweeper.n_jobs", self.n_jobs, "a positive number of trials at a time, or null (the launcher's)"
            )
        if not 0 <= self.max_failure_rate <= 1:
            raise invalid("hydra.sweeper.max_failure_rate", self.max_failure_rate, "a fraction between 0 and 1")
        if not self.heartbeat_s > 0:
            raise invalid("hydra.sweeper.heartbeat_s", self.heartbeat_s, "a positive number of seconds")
        if self.retries < 0:
            raise invalid("hydra.sweeper.retries", self.retries, "0 or more")
        if self.prunes and len(self.directions) > 1:
            raise UserError(
                f"hydra/sweeper/pruner={self.pruner_name}: Optuna prunes single-objective studies only, and this one has "
                f"{len(self.directions)} directions: use hydra/sweeper/pruner=none, or one objective."
            )
        self.build_pruner()  # its settings are checked by building it

    @property
    def stale_after_s(self) -> float:
        return STALE_AFTER_BEATS * self.heartbeat_s

    @property
    def pruner_name(self) -> str:
        target = str(self.pruner.get("_target_", "")).rsplit(".", 1)[-1]
        return next((name for name, cls in PRUNERS.items() if cls == target), target)

    @property
    def prunes(self) -> bool:
        return self.pruner_name != "none"

    def build_pruner(self) -> Any:
        return build(self.pruner, "hydra.sweeper.pruner")

    def build_sampler(self, grid: Optional[dict], seed_offset: int) -> Any:
        """The sampler; its seed moved on by the trials the study has, so a resumed study draws new points."""
        node = copy.deepcopy(self.sampler)
        with open_dict(node):
            if node.get("seed") is not None:
                node.seed = int(node.seed) + seed_offset
            if str(node.get("_target_", "")).endswith("GridSampler"):
                node.search_space = grid
        return build(node, "hydra.sweeper.sampler")


def pruner_node(node: Any) -> DictConfig:
    """``hydra.sweeper.pruner``: a node of conf/hydra/sweeper/pruner/, or the name of one (``pruner=median``)."""
    if node is None or isinstance(node, str):
        from gan_lightning.registry import CONF_DIR

        name = node or "none"
        if name not in PRUNERS:
            raise invalid("hydra.sweeper.pruner", name, f"one of {', '.join(PRUNERS)}")
        return OmegaConf.load(CONF_DIR / "hydra" / "sweeper" / "pruner" / f"{name}.yaml")
    return node


def build(node: Any, setting: str) -> Any:
    """An Optuna object from its ``_target_`` node; UserError with Optuna's reason where its settings are refused."""
    from hydra.utils import instantiate

    try:
        return instantiate(node)
    except Exception as error:
        cause = error.__cause__ or error
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserError(f"{setting}: {detail}.") from None

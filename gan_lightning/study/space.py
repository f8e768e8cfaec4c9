"""A search space as users write it (Hydra's sweep grammar, as hydra-optuna-sweeper read it) and as Optuna needs it.

``choice(a, b)`` is categorical; ``range(start, stop[, step])`` the integers (or steps) from start up to, not
including, stop; ``interval(low, high)`` a float between low and high, ``int(interval(1, 5))`` an integer;
``tag(log, interval(...))`` on a log scale. Anything else is a fixed override every trial gets. The command line's
values take the place of the preset's ``hydra.sweeper.params`` of the same key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from gan_lightning.errors import UserError


@dataclass
class SearchSpace:
    """What a trial draws (``distributions``, Optuna's) and what every trial is given as it is (``fixed``)."""

    distributions: Dict[str, Any] = field(default_factory=dict)
    fixed: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Optional[Mapping[str, Any]], arguments: Sequence[str] = ()) -> SearchSpace:
        """The space of ``hydra.sweeper.params`` (``key: space`` pairs) and the command line's ``key=space``
        overrides; UserError naming the first that is not a space Optuna can draw from."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        texts = {str(key): f"{key}={value}" for key, value in (params or {}).items()}
        for argument in arguments:
            texts[argument.split("=", 1)[0].lstrip("+~")] = argument
        parser = OverridesParser.create()
        space = cls()
        for key, text in texts.items():
            try:
                override = parser.parse_override(text)
            except Exception as error:
                detail = str(error).strip().splitlines()[-1]
                raise UserError(f"{text}: not a search space Hydra can read ({detail}).") from None
            if override.is_hydra_override() or override.is_delete():
                space.fixed[key] = text
            elif override.is_sweep_override():
                space.distributions[override.get_key_element()] = distribution(text, override)
            else:
                space.fixed[override.get_key_element()] = text
        return space

    def overrides(self, params: Mapping[str, Any]) -> List[str]:
        """A trial's command line: its drawn values, then the fixed overrides."""
        return [f"{key}={encode(value)}" for key, value in params.items()] + list(self.fixed.values())

    def grid(self) -> Dict[str, List[Any]]:
        """Every value of each parameter, for the grid sampler: choices, ranges and integer intervals only."""
        from optuna.distributions import CategoricalDistribution, IntDistribution

        grid: Dict[str, List[Any]] = {}
        for key, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution):
                grid[key] = list(dist.choices)
            elif isinstance(dist, IntDistribution) and not dist.log:
                grid[key] = list(range(dist.low, dist.high + 1, dist.step))
            else:
                raise UserError(
                    f"hydra.sweeper.params.{key}: the grid sampler takes choice(...), range(...) or int(interval(...)), "
                    "not a continuous interval: list the values with choice(...), or use hydra/sweeper/sampler=tpe."
                )
        return grid

    def bounds(self, key: str) -> Optional[tuple]:
        """The lowest and highest value of a numeric parameter (None for a categorical one)."""
        dist = self.distributions[key]
        return (dist.low, dist.high) if hasattr(dist, "low") else None


def encode(value: Any) -> str:
    """A drawn value as Hydra's override grammar reads it back (floats in full, so the trial trains with them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def keep_none(transform: Any) -> Any:
    return lambda value: None if value is None else transform(value)


def distribution(text: str, override: Any) -> Any:
    """The Optuna distribution of one sweep override, or UserError saying what is wrong with it."""
    from hydra.core.override_parser.types import Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    kind = type(value).__name__
    if kind == "ChoiceSweep" or (kind == "RangeSweep" and value.shuffle):
        # Optuna's choices are plain values: lists and dicts are kept as the text Hydra reads back.
        choices = list(override.sweep_iterator(transformer=keep_none(Transformer.encode)))
        if len(set(map(str, choices))) != len(choices):
            raise UserError(f"{text}: a choice lists a value twice.")
        return CategoricalDistribution(choices)
    if kind == "RangeSweep":
        values = list(override.sweep_iterator())
        if not values:
            raise UserError(f"{text}: range({value.start}, {value.stop}, {value.step}) holds no value.")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if kind == "IntervalSweep":
        low, high, log = value.start, value.end, "log" in value.tags
        if not low < high:
            raise UserError(f"{text}: interval({low}, {high}) is empty; allowed: interval(low, high) with low < high.")
        if log and low <= 0:
            raise UserError(f"{text}: a log scale needs a lower end above 0, not {low}.")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise UserError(f"{text}: an interval needs finite ends.")
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise UserError(
        f"{text}: not a search space; allowed: choice(...), range(...), interval(...), tag(log, interval(...))."
    )

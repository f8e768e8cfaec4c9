"""Schemas for Hydra's ConfigStore, collected from the classes that define them.

Each option of a config group (an objective, a model, a dataset, an optimizer) is a dataclass that
subclasses its group's base with ``name=...``; its yaml in ``conf/<group>/`` starts from the schema
``/schema/<group>/<name>``, so a wrong type or an unknown key fails when Hydra composes the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Type

SCHEMAS: Dict[str, Dict[str, Type]] = {}
# The config groups' folder: every default lives there.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class Registered:
    """Base for config-group option classes: ``class Hinge(Objective, name="hinge")`` registers it."""

    group: str = ""
    option: str = ""  # the option's name in its group (metrics=image: "image")

    def __init_subclass__(cls, name: str | None = None, group: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if group is not None:
            cls.group = group
        if name is not None:
            cls.option = name
            SCHEMAS.setdefault(cls.group, {})[name] = cls


def implementation(name: str) -> Any:
    """The class, function or module a config names by its dotted path (``gan_lightning.models.dcgan.DCGANGenerator``),
    imported when the config builds it, as Hydra's ``_target_`` is: a config imports no implementation, so none that
    reads its config imports it back."""
    from hydra.utils import get_object

    return get_object(name)

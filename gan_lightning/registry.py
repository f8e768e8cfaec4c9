"""Schemas for Hydra's ConfigStore, collected from the classes that define them.

Each option of a config group (an objective, a model, a dataset, an optimizer) is a dataclass that
subclasses its group's base with ``name=...``; its yaml in ``conf/<group>/`` starts from the schema
``/schema/<group>/<name>``, so a wrong type or an unknown key fails when Hydra composes the config.
"""

from __future__ import annotations

from typing import Dict, Type

SCHEMAS: Dict[str, Dict[str, Type]] = {}


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

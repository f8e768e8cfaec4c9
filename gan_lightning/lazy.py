"""Modules imported when first used.

The config schemas (every class Hydra composes and checks: ``config.py``, the options of ``models``, ``data``,
``objectives``, ``optim``, ``metrics``) need torch only inside their methods. Importing it there on first use
keeps ``--help``, composition and the checks of settings free of the seconds that torch and Lightning take to
import; ``tests/test_commands.py`` checks that they stay so.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional


class LazyModule:
    """Stands for the module ``name``, which is imported when one of its attributes is first asked for."""

    # Names no module it stands for has, so that every other attribute is the module's.
    __slots__ = ("lazy_module_name", "lazy_module")

    def __init__(self, name: str):
        self.lazy_module_name = name
        self.lazy_module: Optional[ModuleType] = None

    def __getattr__(self, attribute: str):
        if self.lazy_module is None:
            self.lazy_module = importlib.import_module(self.lazy_module_name)
        return getattr(self.lazy_module, attribute)

    def __repr__(self) -> str:
        return f"<module {self.lazy_module_name!r}, imported on first use>"


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")
nn = LazyModule("torch.nn")
np = LazyModule("numpy")

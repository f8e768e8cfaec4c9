"""torch and matplotlib, imported when first used.

The config schemas (every class Hydra composes and checks: ``config.py``, the options of ``models``, ``data``,
``objectives``, ``optim``, ``metrics``) need torch only inside their methods. Importing it on first use keeps
``--help``, composition and the checks of settings free of the seconds torch takes to import;
``tests/test_commands.py`` checks that they stay so. The mechanism is the standard library's ``LazyLoader``:
``sys.modules["torch"]`` is torch's own module object, whose code runs at the first attribute read.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The top-level module ``name``, executed when one of its attributes is first read (at once if it already is)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


torch = lazy_module("torch")


def pyplot() -> ModuleType:
    """matplotlib's pyplot drawing to files (the Agg back-end: no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

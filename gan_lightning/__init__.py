"""gan_lightning: train, track and compare Generative Adversarial Networks with Lightning and Hydra."""

import sys as _sys
from pathlib import Path as _Path

from gan_lightning.adapter import runtime as _runtime  # noqa: F401  (first: it reads the environment before Lightning's import changes it)

# hydra/launcher=vectorized: Hydra takes launchers only from the hydra_plugins namespace package; this folder holds
# the project's part of it.
_PLUGINS = str(_Path(__file__).resolve().parent / "plugins")
if _PLUGINS not in _sys.path:
    _sys.path.append(_PLUGINS)

__version__ = "0.1.0"

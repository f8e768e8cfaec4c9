"""Where gan_lightning keeps what it downloads or builds once: data sets, feature extractors, real-data features."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/gan_lightning``, or ``~/.cache/gan_lightning``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan_lightning"

"""Whether this machine can log to W&B online: ``logger.mode=auto`` (the default) logs online where it can, offline
where it cannot. Nothing heavy is imported: the settings are checked before torch is."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

DEFAULT_SERVER = "https://api.wandb.ai"


def wandb_credentials() -> Optional[str]:
    """Where this process finds a W&B API key (the environment's WANDB_API_KEY, or the entry for W&B's server in the
    netrc file that ``wandb login`` writes), or None."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY"
    host = urlparse(os.environ.get("WANDB_BASE_URL") or DEFAULT_SERVER).hostname or ""
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return f"{path} ({host})" if entry and entry[2] else None


def logs_offline(mode: str) -> bool:
    """Whether ``logger.mode`` means offline W&B on this machine."""
    return mode in ("offline", "dryrun") or (mode == "auto" and wandb_credentials() is None)


def where_wandb_logs(mode: str) -> str:
    """The run's first word on W&B: online or offline, and why."""
    if not logs_offline(mode):
        found = wandb_credentials() if mode == "auto" else None
        return "W&B: online" + (f" (credentials from {found})" if found else " (logger.mode=online)")
    if mode == "auto":
        return "W&B: offline, into the run directory (no W&B credentials found: `wandb login` to log online); upload later with wandb sync"
    shown = "offline" if mode == "dryrun" else mode  # W&B's older name, which it sets in the environment itself
    return f"W&B: offline, into the run directory (logger.mode={shown}); upload later with wandb sync"

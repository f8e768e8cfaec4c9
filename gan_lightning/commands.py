"""Shared plumbing of the small commands (extractor, evaluate, sample, report): key=value arguments, clean errors."""

from __future__ import annotations

import logging
import sys
from typing import Callable, Dict, List, Tuple

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from gan_lightning.errors import UserError
from gan_lightning.files import user_fixable


def split_arguments(argv: List[str], own: Tuple[str, ...]) -> Tuple[Dict[str, str], List[str]]:
    """``key=value`` arguments named in ``own`` for the command itself; the rest are config overrides."""
    mine, overrides = {}, []
    for argument in argv:
        key, sep, value = argument.partition("=")
        if sep and key in own:
            mine[key] = value
        else:
            overrides.append(argument)
    return mine, overrides


def main_guard(body: Callable[[], int]) -> None:
    """Run a command: user errors and bad overrides print one message (no traceback) and exit 2."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s", stream=sys.stderr)
    try:
        sys.exit(body())
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (HydraException, OmegaConfBaseException) as error:
        cause = f"\n{error.__cause__}" if error.__cause__ else ""
        print(f"error: {error}{cause}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        fixable = user_fixable(error)  # a full disk, a read-only or forbidden path
        if fixable is None:
            raise
        print(f"error: {fixable}", file=sys.stderr)
        sys.exit(2)

"""What every command shares: ``key=value`` arguments with a ``--help`` that lists them, and clean errors.

Every command reads its arguments as ``python -m gan_lightning.run`` does: ``key=value``. A command's own
settings are plain names (``ckpt=...``, ``rounds=5``); a command that builds a run's config takes the other
arguments as that config's overrides (``model=mlp``, ``metrics.num_samples=1000``), as ``run`` would.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from gan_lightning.errors import UserError, invalid
from gan_lightning.files import user_fixable

REQUIRED = object()  # a setting without a default
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"  # as Hydra's, so every command's lines look alike


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise ValueError(text)
        return value

    parse.allowed = f"a whole number of at least {minimum}"  # type: ignore[attr-defined]
    return parse


def boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


boolean.allowed = "true or false"  # type: ignore[attr-defined]


@dataclass
class Setting:
    name: str
    help: str
    default: Any = REQUIRED
    parse: Callable[[str], Any] = str  # raises ValueError for a value that is not allowed


@dataclass
class Command:
    """A command's settings, read from ``key=value`` arguments; ``overrides`` says what the other arguments are (config
    overrides of a run) when the command takes them, None when it takes none."""

    prog: str
    summary: str
    settings: Sequence[Setting]
    overrides: Optional[str] = None

    def help(self) -> str:
        usage = " ".join(f"{s.name}=..." if s.default is REQUIRED else f"[{s.name}=...]" for s in self.settings)
        lines = [
            f"usage: python -m {self.prog} {usage}{' [OVERRIDE ...]' if self.overrides else ''}",
            "",
            self.summary,
            "",
            "settings:",
        ]
        for s in self.settings:
            shown = str(s.default).lower() if isinstance(s.default, bool) or s.default is None else s.default
            default = "required" if s.default is REQUIRED else f"default: {shown}"
            lines.append(f"  {s.name + '=':14} {s.help} ({default})")
        if self.overrides:
            lines += ["", f"OVERRIDE: {self.overrides}"]
        return "\n".join(lines)

    def parse(self, argv: Sequence[str]) -> Tuple[Dict[str, Any], List[str]]:
        """The settings (defaults filled in) and the config overrides; ``--help`` prints the help and exits 0."""
        if "--help" in argv or "-h" in argv:
            print(self.help())
            raise SystemExit(0)
        own = {s.name: s for s in self.settings}
        values, overrides = {}, []
        for argument in argv:
            key, sep, text = argument.partition("=")
            if key in own and sep:
                try:
                    values[key] = own[key].parse(text)
                except ValueError:
                    raise invalid(key, text, getattr(own[key].parse, "allowed", "see --help")) from None
            elif self.overrides and sep:
                overrides.append(argument)
            else:
                allowed = ", ".join(f"{name}=" for name in own) + (
                    ", or config overrides (key=value)" if self.overrides else ""
                )
                raise UserError(f"{self.prog}: unknown argument {argument!r}; allowed: {allowed} (see --help).")
        missing = [s.name for s in self.settings if s.default is REQUIRED and s.name not in values]
        if missing:
            raise UserError(f"{self.prog}: {', '.join(f'{name}=' for name in missing)} is required (see --help).")
        return {s.name: values.get(s.name, s.default) for s in self.settings}, overrides


def main_guard(body: Callable[[], int]) -> None:
    """Run a command: user errors and bad overrides print one message (no traceback) and exit 2."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
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


def console_script(module: str) -> Callable[[], None]:
    """The function a console script of pyproject.toml's [project.scripts] calls: ``python -m MODULE``, by name."""

    def script() -> None:
        command = importlib.import_module(module)
        if module == "gan_lightning.run":
            command.command_line()  # Hydra's command line sets up its own logging
        main_guard(command.main)

    return script


# gan-run is python -m gan_lightning.run, gan-evaluate python -m gan_lightning.evaluate, and so on.
run_script = console_script("gan_lightning.run")
evaluate_script = console_script("gan_lightning.evaluate")
sample_script = console_script("gan_lightning.sample")
report_script = console_script("gan_lightning.report")
data_script = console_script("gan_lightning.data.__main__")
extractor_script = console_script("gan_lightning.extractor")
bench_script = console_script("gan_lightning.bench.__main__")
compare_script = console_script("gan_lightning.compare.__main__")

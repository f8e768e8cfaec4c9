"""Each command through its real entry point, ``python -m gan_lightning.<command>``, once: it starts, answers
``--help``, and a bad argument or a refused setting is answered without importing torch, Lightning or W&B (the
seconds a new process pays for them; ``gan_lightning/lazy.py``). Everything else about the commands is tested
through their ``main(argv)`` in the test process (tests/helpers/commands.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Set

import pytest

from tests.conftest import REPO

COMMANDS = ("run", "evaluate", "sample", "report", "bench", "data", "extractor")
HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "wandb", "torch_fidelity", "torchvision", "matplotlib")


def imported_packages(stderr: str) -> Set[str]:
    """The top-level packages a process imported, from what ``python -X importtime`` wrote on its stderr."""
    packages = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            packages.add(name.split(".")[0])
    return packages


def python_m(command: str, args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", f"gan_lightning.{command}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_starts_the_real_command_without_the_heavy_packages(command):
    result = python_m(command, ["--help"], REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage" in result.stdout.lower() or "powered by hydra" in result.stdout.lower(), result.stdout
    assert "gan_lightning" in imported_packages(result.stderr)  # the reading of -X importtime works
    assert not imported_packages(result.stderr) & set(HEAVY), sorted(imported_packages(result.stderr) & set(HEAVY))


def test_a_refused_setting_and_a_bad_argument_are_answered_without_the_heavy_packages(tmp_path):
    refused = python_m(
        "run", ["data=ring8", "model=mlp", "trainer.max_steps=0", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "trainer.max_steps=0 is not allowed" in refused.stderr
    assert not imported_packages(refused.stderr) & set(HEAVY), sorted(imported_packages(refused.stderr) & set(HEAVY))
    bad = python_m("evaluate", ["runs=.", "processes=zero"], tmp_path)
    assert bad.returncode == 2 and "processes='zero' is not allowed: a whole number of at least 1" in bad.stderr, (
        bad.stderr[-3000:]
    )
    assert not imported_packages(bad.stderr) & set(HEAVY), sorted(imported_packages(bad.stderr) & set(HEAVY))

"""Each command through its real entry point, ``python -m gan_lightning.<command>``, once: it starts, answers
``--help``, and a bad argument or a refused setting is answered without importing torch, Lightning or W&B (the
seconds a new process pays for them; ``gan_lightning/lazy.py``). Everything else about the commands is tested
through their ``main(argv)`` in the test process (tests/helpers/commands.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import List, Set

import pytest

from tests.conftest import REPO
from tests.helpers.commands import command as in_this_process

COMMANDS = ("run", "evaluate", "sample", "report", "bench", "data", "extractor", "compare")
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


def test_each_command_is_also_a_console_script(tmp_path):
    # pyproject.toml's [project.scripts], installed into the environment's bin/ (Hydra's shell completion needs a
    # program name): gan-evaluate --help answers as python -m gan_lightning.evaluate --help does.
    section = (REPO / "pyproject.toml").read_text().split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    scripts = re.findall(r"^([\w-]+) = ", section, flags=re.M)
    assert sorted(scripts) == sorted(f"gan-{command}" for command in COMMANDS)
    for command in COMMANDS:
        script = Path(sys.executable).parent / f"gan-{command}"
        result = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout == in_this_process(command, ["--help"]).stdout, command
    refused = subprocess.run([str(Path(sys.executable).parent / "gan-run"), "model=foo"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 2 and "model=foo is not allowed" in refused.stderr, refused.stderr[-3000:]

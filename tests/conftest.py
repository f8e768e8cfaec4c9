"""Shared fixtures: compose configs as the command line would, and run jobs in-process or as a CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

import pytest

# Tests run with one PyTorch thread (see docs/configuration.md, "Threads"); W&B never goes online from a test.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("WANDB_MODE", None)
os.environ["WANDB_SILENT"] = "true"
# Feature extractors and real-data features are built by the tests themselves: in a fresh cache per test session,
# or in the one GAN_LIGHTNING_TEST_CACHE names (.ci/run shares one between its sessions, so the extractor is trained
# once per CI run).
os.environ["XDG_CACHE_HOME"] = os.environ.get("GAN_LIGHTNING_TEST_CACHE") or tempfile.mkdtemp(prefix="gan_lightning_test_cache_")

from tests.helpers.hydra import compose_config, run_in_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return tmp_path / "run"


@pytest.fixture(scope="session")
def domain_extractor() -> Path:
    """The Fashion-MNIST domain feature extractor, built through the real command by the first test session that
    needs it in this cache."""
    import re

    import torch

    from gan_lightning.config import compose, to_config
    from gan_lightning.metrics.domain import extractor_path

    path = extractor_path(to_config(compose(["model=mlp"])).data)
    if path.is_file():
        accuracy = torch.load(path, weights_only=True)["test_accuracy"]
    else:
        result = subprocess.run([sys.executable, "-m", "gan_lightning.extractor", "data=fashion_mnist"], cwd=REPO, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        accuracy = float(re.search(r"fashion_mnist: test accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy >= 0.90
    return path


def cli(args: List[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m gan_lightning.run ARGS`` in ``cwd``, as a user would type it."""
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "gan_lightning.run", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


__all__ = ["compose_config", "run_in_process", "cli", "REPO"]

"""Shared fixtures: compose configs as the command line would, and run jobs in-process or as a CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import pytest

# Tests run with one PyTorch thread (see docs/configuration.md, "Threads"); W&B never goes online from a test.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("WANDB_MODE", None)
os.environ["WANDB_SILENT"] = "true"
# Feature extractors and real-data features are built by the tests themselves: in a fresh cache per test session,
# or in the one GAN_LIGHTNING_TEST_CACHE names (.ci/run shares one between its sessions, so the extractor is trained
# once per CI run).
os.environ["XDG_CACHE_HOME"] = os.environ.get("GAN_LIGHTNING_TEST_CACHE") or tempfile.mkdtemp(prefix="gan_lightning_test_cache_")

from tests.helpers.hydra import compose_config, metrics_as_asked, run_in_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return tmp_path / "run"


def extractor_file() -> Path:
    from gan_lightning.config import compose, to_config
    from gan_lightning.metrics.domain import extractor_path

    return extractor_path(to_config(compose(["model=mlp"])).data)


EXTRACTOR_COMMAND = [sys.executable, "-m", "gan_lightning.extractor", "data=fashion_mnist"]
# The extractor's build through the real command, started in the background as soon as the collected tests show
# that one of them needs it: it trains on one core while the tests before that one run on the other.
extractor_build: Optional[subprocess.Popen] = None


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what will not run
def pytest_collection_modifyitems(session, config, items) -> None:
    global extractor_build
    if any("domain_extractor" in item.fixturenames for item in items) and not extractor_file().is_file():
        output = tempfile.TemporaryFile(mode="w+")
        extractor_build = subprocess.Popen(EXTRACTOR_COMMAND, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, text=True)
        extractor_build.output = output


def pytest_sessionfinish(session, exitstatus) -> None:
    if extractor_build is not None and extractor_build.poll() is None:
        extractor_build.kill()  # the session ended before a test needed it (-x, Ctrl-C)
        extractor_build.wait()


@pytest.fixture(scope="session")
def domain_extractor() -> Path:
    """The Fashion-MNIST domain feature extractor, built through the real command by the first test session that
    needs it in this cache."""
    import re

    import torch

    path = extractor_file()
    if extractor_build is not None:
        returncode = extractor_build.wait(timeout=900)
        extractor_build.output.seek(0)
        output = extractor_build.output.read()
        assert returncode == 0, output[-3000:]
        accuracy = float(re.search(r"fashion_mnist: test accuracy ([0-9.]+)", output).group(1))
    elif path.is_file():
        accuracy = torch.load(path, weights_only=True)["test_accuracy"]
    else:
        result = subprocess.run(EXTRACTOR_COMMAND, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr
        accuracy = float(re.search(r"fashion_mnist: test accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy >= 0.90
    return path


def cli(args: List[str], cwd: Path, env: dict | None = None, timeout: float = 600, metrics_default: bool = False) -> subprocess.CompletedProcess:
    """``python -m gan_lightning.run ARGS`` in ``cwd``, as a user would type it; sample quality is measured only when
    ARGS ask for it, or with ``metrics_default`` (the command's own default, metrics=auto)."""
    args = list(args) if metrics_default else metrics_as_asked(args)
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "gan_lightning.run", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


__all__ = ["compose_config", "run_in_process", "cli", "REPO"]

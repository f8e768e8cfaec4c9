"""Shared fixtures: compose configs as the command line would, and run jobs in-process or as a CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

import pytest

# Tests run with one PyTorch thread (see docs/configuration.md, "Threads"); W&B never goes online from a test.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("WANDB_MODE", None)
os.environ.pop("WANDB_API_KEY", None)  # logger.mode=auto finds no credentials: offline whatever the machine holds
os.environ["NETRC"] = os.devnull
os.environ["WANDB_SILENT"] = "true"
# One cache for the whole test session, its pytest-xdist workers included (they inherit this process's environment):
# the feature extractor and real-data features are built once, by the first test that needs them. .ci/run names one
# (GAN_LIGHTNING_TEST_CACHE) for all its sessions.
os.environ.setdefault("GAN_LIGHTNING_TEST_CACHE", tempfile.mkdtemp(prefix="gan_lightning_test_cache_"))
os.environ["XDG_CACHE_HOME"] = os.environ["GAN_LIGHTNING_TEST_CACHE"]
# W&B's own folders (settings, artifact staging) apart for each worker: its runs live in their run directories.
for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
    os.environ[variable] = tempfile.mkdtemp(prefix=f"gan_lightning_test_{variable.lower()}_")

from tests.helpers.commands import command, with_test_defaults  # noqa: E402
from tests.helpers.hydra import compose_config, run_in_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# pytest-xdist's workers inherit this process's environment: give them the one it had before importing Lightning
# changed it (a test checks that training undoes that change).
from gan_lightning.adapter.runtime import restore_cuda_check  # noqa: E402

restore_cuda_check()


def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``run`` the tests that train a run or start a process (``make test-quick`` leaves them out)."""
    from tests.helpers.selection import trains

    for item in items:
        if trains(item.function.__name__, item.fixturenames):
            item.add_marker(pytest.mark.run)


@pytest.fixture(autouse=True)
def own_wandb_service():
    """Processes a test starts run W&B's service of their own, as a user's do: W&B names the service it started in
    this process's environment (WANDB_SERVICE), where a child process would find it and log through it instead."""
    os.environ.pop("WANDB_SERVICE", None)
    yield
    os.environ.pop("WANDB_SERVICE", None)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return tmp_path / "run"


@pytest.fixture(scope="session")
def postgres():
    """The URL of a PostgreSQL server of this test session (tests/helpers/postgres.py)."""
    from tests.helpers.postgres import local_postgres

    with local_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def domain_extractor() -> Path:
    """The Fashion-MNIST domain feature extractor image metrics use, as its command (in this process) names it."""
    result = command("extractor", ["data=fashion_mnist"], cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"fashion_mnist: test accuracy ([0-9.]+) \((.+)\)", result.stdout)
    assert match is not None, result.stdout + result.stderr[-3000:]
    assert float(match.group(1)) >= 0.90
    return Path(match.group(2))


def cli(
    args: List[str], cwd: Path, env: dict | None = None, timeout: float = 600, defaults: bool = True
) -> subprocess.CompletedProcess:
    """``python -m gan_lightning.run ARGS`` in a new process in ``cwd``, as a user would type it, for tests whose
    subject is the process (signals, kills, launchers); ``env``: variables to set (None: to unset); ``defaults``: the
    tests' defaults (no metrics, a CSV log) unless ARGS choose otherwise."""
    args = with_test_defaults(args) if defaults else list(args)
    merged = {**os.environ, **(env or {})}
    full_env = {k: v for k, v in merged.items() if v is not None and k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "gan_lightning.run", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


__all__ = ["compose_config", "run_in_process", "cli", "command", "REPO"]

"""The adapter layer: the only code that reads Lightning's private names, pinned to the Lightning versions allowed,
and switchable off (trainer.fast_path=false) without changing what is trained."""

from __future__ import annotations

import ast
import importlib
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from packaging.requirements import Requirement
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.loops.training_epoch_loop import _TrainingEpochLoop
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from gan_lightning.adapter.steploop import SettledAnswersEpochLoop, Unprofiled
from gan_lightning.config import to_config
from gan_lightning.runs.build import build_datamodule, build_module, build_trainer
from gan_lightning.runs.context import RunContext
from tests.helpers.hydra import compose_config

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gan_lightning"
ADAPTER = PACKAGE / "adapter"
LIGHTNING_PACKAGES = ("pytorch_lightning", "lightning_fabric", "lightning")
# Private names of other libraries (not Lightning) that the package reads, with the library.
OTHER_LIBRARIES_PRIVATE = {"_foreach_lerp_": "torch", "_BatchNorm": "torch"}


def set_in_init(make, name: str):
    """``name`` if an instance made by ``make`` has the attribute (set by Lightning's __init__), else None."""
    return name if name in vars(make()) else None


def a_lightning_optimizer() -> LightningOptimizer:
    return LightningOptimizer(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))


# Every private Lightning name the adapter reads, with the Lightning object that must have it. An instance is
# checked for attributes that Lightning sets in __init__.
PINNED = {
    "_TrainingEpochLoop": lambda: _TrainingEpochLoop,
    "_build_kwargs": lambda: _TrainingEpochLoop._build_kwargs,
    "_should_check_val_fx": lambda: _TrainingEpochLoop._should_check_val_fx,
    "_on_before_batch_transfer": lambda: pl.LightningModule._on_before_batch_transfer,
    "_apply_batch_transfer_handler": lambda: pl.LightningModule._apply_batch_transfer_handler,
    "_trainer": lambda: set_in_init(pl.LightningModule, "_trainer"),
    "_device": lambda: set_in_init(pl.LightningModule, "_device"),
    "_dtype": lambda: set_in_init(pl.LightningModule, "_dtype"),
    "_checkpoint_connector": lambda: set_in_init(
        lambda: pl.Trainer(logger=False, enable_checkpointing=False), "_checkpoint_connector"
    ),
    "_on_before_step": lambda: set_in_init(a_lightning_optimizer, "_on_before_step"),
    "_on_after_step": lambda: set_in_init(a_lightning_optimizer, "_on_after_step"),
    "_experiment": lambda: set_in_init(lambda: WandbLogger(offline=True), "_experiment"),
    "_wandb_init": lambda: set_in_init(lambda: WandbLogger(offline=True), "_wandb_init"),
    "_SubprocessScriptLauncher": lambda: _SubprocessScriptLauncher,
    "_call_children_scripts": lambda: _SubprocessScriptLauncher._call_children_scripts,
    "_check_can_spawn_children": lambda: _SubprocessScriptLauncher._check_can_spawn_children,
    "_ChildProcessObserver": lambda: _ChildProcessObserver,
    "_run": lambda: _ChildProcessObserver._run,
    "_set_num_threads_if_needed": lambda: (
        __import__("lightning_fabric.utilities.distributed", fromlist=["x"])._set_num_threads_if_needed
    ),
    "_configure_launcher": lambda: DDPStrategy._configure_launcher,
    "_start_method": lambda: set_in_init(DDPStrategy, "_start_method"),
    "_launcher": lambda: set_in_init(DDPStrategy, "_launcher"),
    "_ddp_kwargs": lambda: set_in_init(DDPStrategy, "_ddp_kwargs"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def from_lightning(cls: type) -> bool:
    return cls.__module__.split(".")[0] in LIGHTNING_PACKAGES


def lightning_overrides(path: Path) -> dict:
    """Private methods the module's classes define over a Lightning base class's, with line numbers."""
    module = importlib.import_module(module_name(path))
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef) or not isinstance(getattr(module, node.name, None), type):
            continue
        bases = [base for base in getattr(module, node.name).__mro__[1:] if from_lightning(base)]
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name.startswith("_") and not item.name.startswith("__"):
                if any(item.name in vars(base) for base in bases):
                    found.setdefault(item.name, item.lineno)
    return found


def private_names(path: Path) -> dict:
    """Private Lightning names used in ``path``, with line numbers: attributes ``x._name`` the module does not define
    itself, names imported as ``_Name`` from Lightning, and private Lightning methods its classes override. (An attribute
    the module assigns, ``self._x = ...``, counts too: the package keeps no private attributes of its own.)"""
    tree = ast.parse(path.read_text())
    own = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    own |= {
        t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
    }
    found = dict(lightning_overrides(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIGHTNING_PACKAGES:
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.setdefault(alias.name, node.lineno)
        elif isinstance(node, ast.Attribute):
            name = node.attr
            if name.startswith("_") and not name.startswith("__") and name not in own:
                found.setdefault(name, node.lineno)
    return found


def package_files():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_private_lightning_names_are_read_in_the_adapter_only():
    outside = {
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in package_files()
        if ADAPTER not in path.parents
        for name, line in private_names(path).items()
        if name not in OTHER_LIBRARIES_PRIVATE
    }
    assert outside == set()


def test_every_private_name_the_adapter_reads_is_pinned_and_exists_in_the_installed_lightning():
    used = {name for path in ADAPTER.glob("*.py") for name in private_names(path)}
    assert used == set(PINNED), (
        "pin new private names in PINNED (and check them against every allowed Lightning version)"
    )
    missing = [name for name, lookup in PINNED.items() if lookup() is None]
    assert missing == []


def test_the_installed_lightning_is_within_the_range_pyproject_allows_and_that_range_is_one_minor_version():
    spec = next(
        Requirement(line.strip().strip('",'))
        for line in (ROOT / "pyproject.toml").read_text().splitlines()
        if line.strip().startswith('"pytorch-lightning')
    )
    assert spec.specifier.contains(version("pytorch-lightning"))
    # The private names are pinned against one minor series: a newer one must be tested before it is allowed.
    upper = [s.version for s in spec.specifier if s.operator == "<"]
    lower = [s.version for s in spec.specifier if s.operator == ">="]
    assert upper and lower and re.match(r"^\d+\.\d+", upper[0])
    major, minor = (int(x) for x in lower[0].split(".")[:2])
    assert upper[0] in (f"{major}.{minor + 1}", f"{major}.{minor + 1}.0")


TOY = ["data=ring8", "model=mlp", "logger=csv", "metrics=none", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0",
       "trainer.max_steps=30", "trainer.log_every_n_steps=5", "data.batch_size=32"]  # fmt: skip


def train(run_dir: Path, overrides):
    cfg = to_config(compose_config([*TOY, *overrides]))
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build_datamodule(cfg), build_module(cfg)
    trainer = build_trainer(cfg, RunContext(run_dir, name="test"))
    trainer.fit(module, datamodule=datamodule)
    return module, trainer


@pytest.mark.parametrize(
    "setting",
    [
        [
            "trainer.d_steps=2",
            "regularization.r1_gamma=1.0",
            "regularization.r1_interval=2",
            "regularization.ema_decay=0.9",
        ],
        ["objective=wgan_gp", "trainer.updates=simultaneous"],
    ],
    ids=["algorithm1-r1-ema", "simultaneous-wgan_gp"],
)
def test_plain_lightning_trains_the_same_weights_and_logs_as_the_fast_path(tmp_path, setting):
    fast, fast_trainer = train(tmp_path / "fast", setting)
    plain, plain_trainer = train(tmp_path / "plain", [*setting, "trainer.fast_path=false"])
    # The fast path took every shortcut; the plain run none of them.
    assert fast.direct_updates and fast.batches_unchanged
    assert isinstance(fast_trainer.fit_loop.epoch_loop, SettledAnswersEpochLoop) and isinstance(
        fast_trainer.profiler, Unprofiled
    )
    assert not plain.direct_updates and not plain.batches_unchanged
    assert type(plain_trainer.fit_loop.epoch_loop) is _TrainingEpochLoop and isinstance(
        plain_trainer.profiler, PassThroughProfiler
    )
    assert fast.steps_done == plain.steps_done == 30
    assert fast_trainer.global_step == plain_trainer.global_step
    for key, value in plain.state_dict().items():
        assert torch.equal(fast.state_dict()[key], value), key
    for fast_opt, plain_opt in zip(fast_trainer.optimizers, plain_trainer.optimizers):
        for fast_state, plain_state in zip(fast_opt.state.values(), plain_opt.state.values()):
            assert all(torch.equal(fast_state[k], plain_state[k]) for k in plain_state)
    fast_log, plain_log = ((run / "csv" / "metrics.csv").read_text() for run in (tmp_path / "fast", tmp_path / "plain"))
    assert fast_log == plain_log and len(fast_log.splitlines()) == 1 + 30 // 5


def unit(module: str) -> str:
    """The part of the package a module belongs to: a subpackage (gan_lightning.metrics) or a top-level module."""
    return ".".join(module.split(".")[:2])


def is_unit(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def imports_between_units() -> dict:
    """unit -> units it imports (anywhere in its modules, imports inside functions included)."""
    edges: dict = {}
    for path in package_files():
        module = module_name(path)
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                    )
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.startswith("gan_lightning.") and unit(target) != unit(module) and is_unit(unit(target)):
                    edges.setdefault(unit(module), set()).add(unit(target))
    return edges


def test_no_part_of_the_package_imports_one_that_imports_it_back():
    edges = imports_between_units()
    assert ("gan_lightning.callbacks" in edges) and (
        "gan_lightning.metrics" in edges["gan_lightning.callbacks"]
    )  # the walk sees imports
    cycles = []
    for start in edges:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []

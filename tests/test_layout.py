"""The package's shape stays easy to live in: few modules at the top, shallow imports, the GAN module the algorithm
alone, no stand-in objects forwarding attributes, and Lightning's checkpoint layout named in adapter/ only."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parents[1] / "gan_lightning"
MAX_TOP_LEVEL_MODULES = 12
MAX_IMPORT_DEPTH = 8
MAX_FLOORS_WITH_LAZY_IMPORTS = 9  # counting the imports inside functions too


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> Dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "hydra_plugins" not in path.parts}


def module_level_imports(path: Path, modules: Set[str]) -> Set[str]:
    """The package's modules ``path`` imports when it is imported: top-level statements only (an import inside a
    function runs when it is called; one under ``if TYPE_CHECKING`` never)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def every_import(path: Path, modules: Set[str]) -> Set[str]:
    """The package's modules ``path`` imports anywhere (inside functions too, where they run when called), but for
    those under ``if TYPE_CHECKING``, which never run. A config that names its implementation by a dotted string
    (gan_lightning.registry.implementation) imports nothing."""
    tree = ast.parse(path.read_text())
    never = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    module, package = (
        module_name(path),
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0],
    )
    found = set()
    for node in ast.walk(tree):
        if id(node) in never:
            continue
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in modules and name != module}
    return found


@functools.cache
def full_import_graph() -> Dict[str, frozenset]:
    modules = package_modules()
    return {name: frozenset(every_import(path, set(modules))) for name, path in modules.items()}


def cycle_in(graph: Dict[str, frozenset]) -> List[str]:
    """A chain of imports that comes back to its start (empty when there is none)."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: List[str]) -> List[str]:
        state[name] = 1
        for imported in sorted(graph[name]):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state:
                found = visit(imported, [*path, imported])
                if found:
                    return found
        state[name] = 2
        return []

    for name in sorted(graph):
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return []


def test_no_module_imports_one_that_imports_it_back_inside_functions_either():
    graph = full_import_graph()
    # the walk sees imports inside functions (the lifecycle imports training once the settings pass), and finds circles
    assert "gan_lightning.runs.training" in graph["gan_lightning.runs.lifecycle"]
    assert cycle_in({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"})}) == ["a", "b", "c", "a"]
    assert cycle_in(graph) == []


def test_imports_inside_functions_included_the_package_is_at_most_nine_floors_deep():
    chain = longest_chain(full_import_graph())
    assert len(chain) <= MAX_FLOORS_WITH_LAZY_IMPORTS, " -> ".join(chain)


@functools.cache
def import_graph() -> Dict[str, frozenset]:
    modules = package_modules()
    return {name: frozenset(module_level_imports(path, set(modules)) - {name}) for name, path in modules.items()}


def longest_chain(graph: Dict[str, frozenset]) -> List[str]:
    """The longest chain of module-level imports, a module importing the next (the graph has no cycle)."""

    @functools.cache
    def chain(name: str) -> tuple:
        below = [chain(imported) for imported in graph[name]]
        return (name, *max(below, key=len, default=()))

    return list(max((chain(name) for name in graph), key=len))


def test_at_most_twelve_modules_at_the_top_of_the_package():
    top = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_imports_are_at_most_eight_levels_deep():
    graph = import_graph()
    assert len(graph) > 60 and graph["gan_lightning.runs.lifecycle"]  # the walk sees the package and its imports
    chain = longest_chain(graph)
    assert len(chain) <= MAX_IMPORT_DEPTH, " -> ".join(chain)


def test_no_object_of_the_package_forwards_unknown_attributes():
    forwarding = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for path in package_modules().values()
                  for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"]  # fmt: skip
    assert forwarding == []


def test_the_gan_module_is_the_algorithm():
    source = (PACKAGE / "training" / "module.py").read_text()
    (gan,) = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "GAN"]
    assert gan.end_lineno - gan.lineno + 1 <= 250
    code = ast.get_source_segment(source, gan)
    # How a step is captured, replayed and checked lives in training/steps.py, cuda_graphs.py and nonfinite.py.
    for name in ("StepGraphs", "graph.", "capturing", "watch(", "torch.cuda", "isfinite", "Diverged("):
        assert name not in code, name


def test_lightnings_checkpoint_keys_are_named_in_the_adapter_only():
    from gan_lightning.adapter import checkpoint_layout

    keys = {
        checkpoint_layout.WEIGHTS,
        checkpoint_layout.OPTIMIZERS,
        checkpoint_layout.LOOPS,
        checkpoint_layout.CALLBACKS,
        "fit_loop",
        "combined_loader",
    }
    outside = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value!r}"
        for path in package_modules().values()
        if "adapter" not in path.parts
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in keys and not is_own_state_key(path, node)
    ]
    assert outside == []


def is_own_state_key(path: Path, node: ast.Constant) -> bool:
    """The domain feature extractor's file has a ``state_dict`` entry of its own (not a Lightning checkpoint)."""
    return path.name == "domain.py" and node.value == "state_dict"


def test_wandb_runs_are_opened_in_tracking_only_and_hydras_messages_read_in_the_adapter_only():
    outside = {
        str(path.relative_to(PACKAGE.parent)): text
        for path in package_modules().values()
        for text in [path.read_text()]
    }
    opened = [name for name, text in outside.items() if "wandb.init(" in text and "/tracking/" not in f"/{name}"]
    assert opened == []
    # the words of Hydra's errors that the command line's messages are built from (gan_lightning/adapter/hydra_cli.py)
    hydra_words = ("Could not find '", "An item is already at", "converted to (", "Could not override")
    read = [
        name
        for name, text in outside.items()
        for words in hydra_words
        if words in text and "/adapter/" not in f"/{name}"
    ]
    assert read == []

"""Which tests train a run or start a process: marked ``run`` at collection, so that ``make test-quick`` (``-m "not
run"``) keeps the unit tests. Read from the code, not kept by hand: a test trains when its function, a fixture it
asks for, or a function of the tests they call (by name, transitively) calls one of ``RUNNERS``."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, Set

# What trains or starts a process: the tests' runners, Lightning's fit, the benchmark's training loops, code run from
# the docs, subprocesses, a command's main().
RUNNERS = frozenset({"run_in_process", "run_command", "command", "cli", "start", "python_m", "fit", "framework_training", "plain_training",
                     "exec", "Popen", "main", "start_processes"})  # fmt: skip
SUBPROCESS_CALLS = frozenset({"run", "check_call", "check_output"})  # subprocess.run(...) and the like
TESTS = Path(__file__).resolve().parents[1]


def called_names(node: ast.AST) -> Set[str]:
    """Names a piece of code calls (``f(...)``, ``x.f(...)``), ``subprocess.run`` as ``Popen``, and the names it
    passes along (a helper given as an argument, ``lambda: trained(...)``)."""
    names: Set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            function = child.func
            if isinstance(function, ast.Name):
                names.add(function.id)
            elif isinstance(function, ast.Attribute):
                is_subprocess = isinstance(function.value, ast.Name) and function.value.id == "subprocess"
                names.add("Popen" if is_subprocess and function.attr in SUBPROCESS_CALLS else function.attr)
            for argument in child.args:
                if isinstance(argument, ast.Name):
                    names.add(argument.id)
    return names


@functools.cache
def module_functions(path: Path) -> Dict[str, FrozenSet[str]]:
    """Every function defined in a test file (methods and nested ones included) with the names it calls."""
    tree = ast.parse(path.read_text())
    return {
        node.name: frozenset(called_names(node))
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


@functools.cache
def suite_functions() -> Dict[str, FrozenSet[str]]:
    """The functions of every file of the test suite, by name (a name defined twice counts with both bodies)."""
    merged: Dict[str, Set[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for name, calls in module_functions(path).items():
            merged.setdefault(name, set()).update(calls)
    return {name: frozenset(calls) for name, calls in merged.items()}


def trains(function_name: str, fixtures: Iterable[str]) -> bool:
    """Whether the test ``function_name`` with ``fixtures`` reaches a runner."""
    code = suite_functions()
    pending, seen = [function_name, *fixtures], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        calls = code.get(name, frozenset())
        if calls & RUNNERS:
            return True
        pending.extend(calls & code.keys())
    return False

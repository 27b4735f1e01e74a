"""The structure of the code, as docs/development.md writes it down: layers that import only
downwards (import-linter's contracts in pyproject.toml), imports inside functions only for
what is heavy or optional, and modules short enough to read."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mnistbench"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: What may be imported inside a function, each kind for one reason (docs/development.md):
LAZY = {
    # Heavy: seconds to import, and a run's worker must import only its own backend.
    "keras",
    "tensorflow",
    "jax",
    "torch",
    # Optional: installed with an extra, and slow to import.
    "ray",
    # Plotting and tables: hundreds of milliseconds that `mnistbench --help` and a worker's
    # start-up do not pay unless they draw or analyse.
    "matplotlib",
    "pandas",
    "numpy",
    "scipy",
    "ruptures",
    "pytest_benchmark",
    "rich",
    # Read once, where a file of their kind is: TOML sweep files.
    "tomllib",
    # The results store's library: only the commands that open a store load it.
    "sqlalchemy",
    # Platform-specific: absent on Windows.
    "fcntl",
    "resource",
}
#: Lines past which a module must say in its docstring why it is long.
MAX_LINES = 600


def _function_imports(path: Path) -> list[tuple[str, str]]:
    """``(function, module)`` for each import inside a function of the file at ``path``."""
    tree = ast.parse(path.read_text())
    found = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    found += [(function.name, alias.name) for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    found.append((function.name, "." * node.level + (node.module or "")))
    return found


def test_the_layering_contracts_hold():
    # lint-imports reads pyproject.toml from the working directory.
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        assert lint_imports() == 0, "run `lint-imports` for the broken contract"
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_inside_functions_are_only_of_heavy_or_optional_libraries(path):
    wrong = [
        f"{function}() imports {module}"
        for function, module in _function_imports(path)
        if module.split(".")[0] not in LAZY
    ]
    assert not wrong, f"{path.relative_to(ROOT)}: {wrong}: import it at the top of the module"


def test_the_lazy_imports_are_found_at_all():
    # Guards the test above against passing because it sees nothing.
    found = {module for path in MODULES for _, module in _function_imports(path)}
    assert {"keras", "ray", "pandas"} <= {module.split(".")[0] for module in found}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_in_its_docstring(path):
    lines = len(path.read_text().splitlines())
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "Why this module is long:" in docstring, (
        f"{path.relative_to(ROOT)} has {lines} lines: split it, or say why not in its "
        "docstring ('Why this module is long: ...')"
    )


def test_the_layers_drawn_in_development_md_are_the_contracts():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = contracts["contracts"][0]["layers"]
    drawn = (ROOT / "docs" / "development.md").read_text().split("```text\n", 1)[1]
    drawn = drawn.split("```", 1)[0].strip().splitlines()
    assert drawn == [layer.replace("mnistbench.", "") for layer in layers]


def test_every_package_of_the_tree_is_installed_and_every_installed_one_exists():
    # pyproject.toml lists the packages (the reference plugins live outside mnistbench/):
    # a subpackage missing there installs without its modules, one listed that is not
    # there fails `pip install` on a fresh clone.
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = {name for name in setuptools["packages"] if name.startswith("mnistbench.")}
    listed.add("mnistbench")
    tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "mnistbench").rglob("__init__.py")
    }
    assert listed == tree

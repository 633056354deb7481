"""The house rules that no linter checks for us: import style, ``__all__``, one version.

Each rule is stated in the test's docstring; a failure names the module and what to do.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "detargs"
DOCS = ROOT / "docs"


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


MODULES = dict(_modules())


def _tree(name: str) -> ast.Module:
    return ast.parse(MODULES[name].read_text(encoding="utf-8"))


def _absolute(name: str, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` in module ``name`` reads, written absolutely."""
    if node.level == 0:
        return node.module or ""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(item) for item in value]
    return None


def _imported_names() -> set[tuple[str, str]]:
    """``(module, name)`` for every ``from module import name`` inside the package, and
    every ``module.name`` read where ``from package import module`` bound the module."""
    found: set[tuple[str, str]] = set()
    for name in MODULES:
        tree = _tree(name)
        bound: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _absolute(name, node)
                for alias in node.names:
                    found.add((source, alias.name))
                    if f"{source}.{alias.name}" in MODULES:
                        bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
            ):
                found.add((bound[node.value.id], node.attr))
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_package_imports_itself_relatively(module: str) -> None:
    """Inside src/detargs every import of the package is relative (``from .x import y``):
    one style, and a module moved into a subpackage keeps its sibling imports."""
    absolute = [
        f"line {node.lineno}"
        for node in ast.walk(_tree(module))
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "detargs"
        )
        or (
            isinstance(node, ast.Import)
            and any(alias.name.split(".")[0] == "detargs" for alias in node.names)
        )
    ]
    assert not absolute, f"{module}: write these imports relatively: {', '.join(absolute)}"


_DOCS_TEXT = "\n".join(path.read_text(encoding="utf-8") for path in sorted(DOCS.glob("*.md")))
_IMPORTED = _imported_names()


@pytest.mark.parametrize(
    "module", sorted(name for name in MODULES if _declared_all(_tree(name)) is not None)
)
def test_all_lists_only_documented_or_used_names(module: str) -> None:
    """A module's ``__all__`` names what docs/*.md document (as `name`, or a ``name(``
    call in an example) or what another module of the package imports from it; nothing
    else. Private modules (``_x``) follow the same rule: their ``__all__`` is what the
    package uses of them."""
    declared = _declared_all(_tree(module)) or []
    unused = [
        name
        for name in declared
        if name != "__version__"
        and (module, name) not in _IMPORTED
        and not re.search(rf"[`.]{re.escape(name)}[`(.\[]|\b{re.escape(name)}\(", _DOCS_TEXT)
    ]
    assert not unused, (
        f"{module}.__all__ lists {unused}: neither documented in docs/*.md nor imported by "
        "another module; drop them from __all__ (or document them)"
    )


def test_every_public_name_is_documented_in_the_api_page() -> None:
    """``detargs.__all__`` is the public API, and docs/api.md documents every name of it
    (the error classes in its error tree, and in full in docs/errors.md, which it links)."""
    import detargs

    api = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [name for name in detargs.__all__ if not re.search(rf"\b{name}\b", api)]
    assert not missing, f"docs/api.md does not document {missing}"


def test_the_version_is_written_once() -> None:
    """``__version__`` in src/detargs/__init__.py is the one version: pyproject reads it
    (hatch's dynamic version) and no other file assigns one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/detargs/__init__.py"
    assigning = [
        name
        for name in MODULES
        for node in _tree(name).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and "__version__" in ast.unparse(node).split("=")[0]
    ]
    assert assigning == ["detargs"]


def test_the_doctests_of_every_src_module_run_with_the_suite() -> None:
    """pytest collects src (``testpaths``) with ``--doctest-modules``, so every example in
    a module's docstrings runs; src/conftest.py leaves out only modules whose optional
    dependency is missing."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_options = options["tool"]["pytest"]["ini_options"]
    assert "src" in pytest_options["testpaths"]
    assert "--doctest-modules" in pytest_options["addopts"]

"""The package is laid out like the book: each part imports only the layers below it.

Bottom to top: ``core`` < ``data``, ``nn`` < ``callbacks`` < ``loop`` < ``recipes`` < ``cli``.
``figures`` and ``book`` sit beside the stack, on ``core``, ``data`` and ``nn``: the loop never
imports a figure. Read from the source with ``ast``, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labpkg"

_BASE = {"core"}
_MODEL = _BASE | {"data", "nn"}
_LOOP = _MODEL | {"callbacks", "loop"}
#: part -> the parts its modules may import (besides its own).
MAY_IMPORT = {
    "core": set(),
    "data": _BASE,
    "nn": _BASE,
    "callbacks": _MODEL,
    "loop": _LOOP,
    "figures": _MODEL,
    "book": _MODEL,
    "recipes": _LOOP | {"figures"},
    "cli": _LOOP | {"figures", "recipes"},
    "__main__": {"cli"},
}
# The root package (labpkg/__init__.py) re-exports every layer; it is nobody's layer.
ROOT = "labpkg"

#: Imports that cross the layers, each inside a function so importing the module never loads
#: the layer above. (importer, imported module) -> why.
EXCEPTIONS = {
    ("labpkg.callbacks.history", "labpkg.figures.viz"): "History.plot() draws the curves",
    ("labpkg.loop.lr_finder", "labpkg.figures.viz"): "LRFinderResult.plot() draws the test",
    ("labpkg.book.exercises", "labpkg.recipes"): "an answer is computed from Recipe's defaults",
    ("labpkg.book.versions", "labpkg"): "reads labpkg.__version__ (pyproject.toml reads it too)",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """``labpkg.loop.trainer`` -> ``loop``; ``labpkg.cli`` -> ``cli``; ``labpkg`` -> ``labpkg``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ROOT


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(module: str) -> list[tuple[str, bool]]:
    """(imported labpkg module, imported at module level?) for each import in ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    in_function = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
    }
    found = []
    for node in ast.walk(tree):
        top = id(node) not in in_function
        if isinstance(node, ast.Import):
            found += [(alias.name, top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                # from labpkg.core import checks: the module labpkg.core.checks
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule if submodule in MODULES else node.module, top))
    return [(name, top) for name, top in found if name.split(".")[0] == ROOT]


def _crossings() -> dict[tuple[str, str], bool]:
    """(importer, imported) -> at module level?, for every import that leaves its layer."""
    crossings = {}
    for module in MODULES:
        part = _part(module)
        if part == ROOT:
            continue
        for imported, top in _imports(module):
            target = _part(imported)
            if target != part and target not in MAY_IMPORT[part]:
                crossings[(module, imported)] = crossings.get((module, imported), False) or top
    return crossings


def test_every_module_belongs_to_a_layer():
    # a new subpackage or top-level module needs its place in MAY_IMPORT
    parts = {_part(m) for m in MODULES} - {ROOT}
    assert sorted(parts - set(MAY_IMPORT)) == []
    for allowed in MAY_IMPORT.values():
        assert allowed <= set(MAY_IMPORT)


def test_no_module_imports_from_a_layer_above_its_own():
    unexpected = {pair: top for pair, top in _crossings().items() if pair not in EXCEPTIONS}
    assert unexpected == {}


def test_each_listed_exception_is_still_needed_and_imports_inside_a_function():
    crossings = _crossings()
    assert sorted(set(EXCEPTIONS) - set(crossings)) == []  # a stale entry: delete it
    assert [pair for pair in EXCEPTIONS if crossings[pair]] == []  # at module level: not lazy


def test_the_loop_callbacks_data_and_model_parts_never_import_figures_at_module_level():
    for module in MODULES:
        if _part(module) in {"core", "data", "nn", "callbacks", "loop"}:
            found = [name for name, top in _imports(module) if top and _part(name) == "figures"]
            assert found == [], module


def test_no_import_cycle_between_parts():
    # the root package imports every part; leave it out, or every part would be in a cycle
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        part = _part(module)
        if part != ROOT:
            targets = {_part(name) for name, _ in _imports(module)} - {part, ROOT}
            graph.setdefault(part, set()).update(targets)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    assert sorted(part for part in graph if reaches(part, part, set())) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_opens_with_one_line_saying_what_it_holds(module):
    docstring = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert docstring, f"{module} has no docstring"
    first, *rest = docstring.splitlines()
    # one whole sentence on the first line (not a question, not cut off), then a blank line
    assert first.strip().endswith((".", ":")), f"{module}: {first!r}"
    assert not rest or not rest[0].strip(), f"{module}: the summary runs onto a second line"

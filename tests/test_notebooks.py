"""Conventions every lesson notebook keeps: Colab cell, no stored outputs, listed in the TOC."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from conftest import ROOT, toc_files

import labpkg

NOTEBOOKS = sorted((ROOT / "lessons").glob("*.ipynb"))
# IPython expands {REPO} in a magic's line, so the cell states the address once, in a short line
REPO = re.compile(r'^REPO = "(?P<url>[^"]+)"$', re.MULTILINE)
INSTALL = re.compile(r'%pip install (?:-q )?"labpkg @ git\+\{REPO\}@v(?P<version>[^"]+)"')


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def test_there_are_lessons():
    assert NOTEBOOKS, "lessons/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_states_its_version_checks_it_and_installs_it_only_on_colab(path, book_config):
    first = _cells(path)[0]
    source = "".join(first["source"])
    assert first["cell_type"] == "code"
    assert "remove-cell" in first["metadata"].get("tags", [])  # on the site: hidden
    assert 'if "google.colab" in sys.modules:' in source
    match = INSTALL.search(source)
    assert match, f"{path.name}: no pinned '%pip install \"labpkg @ git+{REPO}@vX\"' line"
    url = REPO.search(source)
    assert url and url["url"] == book_config["repository"]["url"] == labpkg.book.versions.REPOSITORY
    assert match["version"] == labpkg.__version__
    # every reader, on Colab or not, is told if the labpkg they import is another version
    assert source.startswith(f"# This notebook was written for labpkg {labpkg.__version__};")
    assert f'\nlabpkg.check_version("{labpkg.__version__}")' in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    stored = [c for c in _cells(path) if c["cell_type"] == "code" and c.get("outputs")]
    assert stored == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents(path):
    assert path.relative_to(ROOT).with_suffix("").as_posix() in toc_files()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_ends_with_exercises(path):
    markdown = "".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    assert "## Exercises" in markdown


def test_every_toc_entry_exists():
    for entry in toc_files():
        candidates = [ROOT / f"{entry}{suffix}" for suffix in (".md", ".ipynb")]
        assert any(c.exists() for c in candidates), entry


def _imports(path: Path) -> list[str]:
    """Every module a notebook imports (``import x`` and ``from x import y``), magics skipped."""
    modules = []
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        # an IPython magic (%pip, !ls) is not Python: keep its indentation, drop the rest
        code = "\n".join(
            line[: len(line) - len(line.lstrip())] + "pass"
            if line.lstrip().startswith(("%", "!"))
            else line
            for line in lines
        )
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                modules += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules.append(node.module)
    return modules


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_imports_only_labpkg_torch_and_the_standard_library(path):
    # one import line for the book's package: chapters use labpkg.X, never labpkg.sub.X
    allowed = set(sys.stdlib_module_names) | {"torch"}
    bad = [m for m in _imports(path) if m != "labpkg" and m.split(".")[0] not in allowed]
    assert bad == [], f"{path.name} imports {bad}: use labpkg's top-level names"
    assert "labpkg" in _imports(path)

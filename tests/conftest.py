"""Shared fixtures: the repository layout, the book's config, and one clean build of the site."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from worktree import ROOT  # one definition of the project root


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    """Every `file:` entry of _toc.yml (without suffix), root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files.extend(section["file"] for section in chapter.get("sections", []))
    return files


#: A code cell that draws: calls a labpkg.viz function, History.plot, or uses LivePlot.
DRAWS = re.compile(r"\blabpkg\.viz\.(?!plt\b)\w+\(|\.plot\(|\bLivePlot\(")


def drawing_cells(notebook: Path) -> list[int]:
    """Indices of the code cells of ``notebook`` that draw a figure."""
    cells = json.loads(notebook.read_text())["cells"]
    return [
        i
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code" and DRAWS.search("".join(cell["source"]))
    ]


@dataclass
class BuiltSite:
    html: Path
    log: str
    returncode: int


@pytest.fixture(scope="session")
def built_site() -> BuiltSite:
    """Build the book once per test session, from an empty _build, warnings as errors.

    Starting from nothing matters: an incremental build can report success over a page whose
    warning was printed by an earlier run, and the execution cache would skip notebooks.
    """
    build_dir = ROOT / "_build"
    shutil.rmtree(build_dir, ignore_errors=True)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    return BuiltSite(build_dir / "html", proc.stdout + proc.stderr, proc.returncode)

"""Shared fixtures: the repository layout, the book's config, the Colab rehearsal of every
notebook and the site built from it; and the time of each stage, printed after the run."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import settings
from rehearsal import JOBS, NOTEBOOKS, BuiltSite, Rehearsal, build_site, make_colab, rehearse
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


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory) -> Rehearsal:
    """Every notebook executed once, in a Colab-like environment, after its own install cell.

    The tests of ``test_colab.py`` read the outcome, the book build renders the executed
    notebooks, and the browser opens the pages built from them: one execution serves all.
    """
    import labpkg

    root = tmp_path_factory.mktemp("colab")
    colab = make_colab(root, labpkg.__version__)
    _stage("Colab-like environment", colab.seconds)
    done = rehearse(colab, NOTEBOOKS, root / "executed")
    _stage(f"notebooks ({JOBS} at a time)", done.seconds)
    return done


@pytest.fixture(scope="session")
def built_site(request, tmp_path_factory) -> BuiltSite:
    """The site built once per session from the rehearsal's executed notebooks, from an empty
    ``_build``, warnings as errors (an incremental build can report success over a page whose
    warning an earlier run printed).

    For working on the page tests alone, ``LABPKG_BUILT_SITE=path/to/html`` points them at a
    site built before (never set in ``make test`` or CI)."""
    if reuse := os.environ.get("LABPKG_BUILT_SITE"):
        return BuiltSite(Path(reuse), "", 0, 0.0)
    rehearsal = request.getfixturevalue("rehearsal")
    site = build_site(rehearsal.executed, tmp_path_factory.mktemp("site"))
    _stage("book build (-W, executed notebooks)", site.seconds)
    return site


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook has added the group names
def pytest_collection_modifyitems(config, items):
    """Under ``--dist loadgroup`` every test of the "site" group must carry the group in its id
    (pytest-xdist does that); if a pytest or xdist upgrade breaks it, each worker would run
    the whole rehearsal and build again: refuse to start instead."""
    if getattr(config.option, "loadgroup", False):
        grouped = [i for i in items if i.get_closest_marker("xdist_group")]
        lost = [i.nodeid for i in grouped if "@" not in i.nodeid]
        if lost:  # a worker's error reaches the terminal only as an INTERNALERROR: say why
            message = f"xdist_group ignored for {lost[:2]}...: pytest-xdist cannot group them"
            print(message, file=sys.__stderr__, flush=True)
            raise pytest.UsageError(message)


# ------------------------------------------------------------------------ stage times
# Each session-wide stage records its time in a file of its own; the controlling process
# (also under pytest-xdist) prints them after the run, with the time of the unit tests.
_STAGES = Path(os.environ.get("LABPKG_STAGE_LOG", ROOT / "_build" / "test-stages"))


def _stage(name: str, seconds: float) -> None:
    _STAGES.mkdir(parents=True, exist_ok=True)
    (_STAGES / f"{time.time_ns()}.json").write_text(json.dumps([name, seconds]))


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controlling process only
        shutil.rmtree(_STAGES, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    durations: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) and hasattr(report, "duration"):
                if report.nodeid.startswith("tests/test_browser.py"):
                    stage = "browser"
                elif report.nodeid.endswith("@site") or "test_colab.py" in report.nodeid:
                    stage = "rehearsal and build checks (the stages above included)"
                else:
                    stage = "unit tests"
                durations[stage] = durations.get(stage, 0.0) + report.duration
    stages = sorted(_STAGES.glob("*.json")) if _STAGES.exists() else []
    lines = [json.loads(p.read_text()) for p in stages]
    lines += [[f"{name} (sum of test durations)", t] for name, t in sorted(durations.items())]
    terminalreporter.section("stage times")
    for name, seconds in lines:
        terminalreporter.write_line(f"{seconds:8.1f} s  {name}")


# ------------------------------------------------------------------------- hypothesis
# The full example counts in CI (CI=true, set by .ci/run), fewer for a quick local run.
settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("dev", max_examples=12, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

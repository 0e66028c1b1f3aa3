"""The site builds from clean with warnings as errors, and the pages hold executed outputs."""

from __future__ import annotations

import json
import os
import re

import pytest
from conftest import ROOT, drawing_cells, toc_files
from numerals import GLUE_ROLE

pytestmark = pytest.mark.xdist_group("site")  # one worker runs the rehearsal, build, browser


def test_clean_build_has_no_warnings(built_site):
    # Sphinx writes "file:line: WARNING: ..."; the kernel's own "[IPKernelApp] WARNING |" lines
    # about its local TCP transport are not about the book and are not matched.
    pattern = re.compile(r"\b(WARNING|ERROR|CRITICAL|SEVERE):")
    warnings = [line for line in built_site.log.splitlines() if pattern.search(line)]
    assert built_site.returncode == 0, built_site.log[-5000:]
    assert warnings == [], "\n".join(warnings)


def test_every_toc_entry_becomes_a_page(built_site):
    missing = [f for f in toc_files() if not (built_site.html / f"{f}.html").exists()]
    assert missing == []
    assert (built_site.html / "index.html").exists()


def test_setup_chapter_shows_its_executed_outputs(built_site):
    page = (built_site.html / "lessons" / "00_setup.html").read_text()
    assert "training device:" in page  # printed by a cell, so the notebook was executed
    assert "(8, 4, 64, 64)" in page
    # the Colab install cell, and what %pip printed, are hidden on the site (tag remove-cell)
    assert "google.colab" not in page and "restart the kernel" not in page


def test_widget_scripts_are_served_by_the_site_itself(built_site):
    page = (built_site.html / "lessons" / "00_setup.html").read_text()
    scripts = [s.split("?")[0] for s in re.findall(r"<script[^>]*src=\"([^\"]+)\"", page)]
    assert any(s.endswith("jupyter-widgets/embed-amd.js") for s in scripts), scripts
    assert not [s for s in scripts if "://" in s], scripts
    vendored = built_site.html / "_static" / "jupyter-widgets"
    for name in ("require.js", "embed-amd.js", "widgets-config.js"):
        assert (vendored / name).stat().st_size > 0
    assert "application/vnd.jupyter.widget-state+json" in page  # widget state was saved


def test_api_reference_is_generated_from_docstrings(built_site):
    page = (built_site.html / "book" / "api.html").read_text()
    assert "pick_device" in page
    assert "cuda, then mps, then cpu" in page


LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.name)
def test_every_drawing_cell_has_its_figure_in_the_executed_notebook(rehearsal, notebook):
    cells = json.loads(rehearsal.runs[notebook.name].executed.read_text())["cells"]
    missing = [
        i
        for i in drawing_cells(notebook)
        if not any("image/png" in out.get("data", {}) for out in cells[i].get("outputs", []))
    ]
    assert missing == [], f"drawing cells without a figure: {missing}"


def _glued_values(executed: dict) -> dict[str, str]:
    """name -> text/plain of each value a cell glued (myst-nb stores them as outputs)."""
    values = {}
    for cell in executed["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            for mime, data in output.get("data", {}).items():
                if name and mime.endswith("text/plain"):
                    values[name] = data if isinstance(data, str) else "".join(data)
    return values


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "lessons").glob("*.ipynb")))
def test_glued_numbers_appear_on_the_page_as_the_cells_computed_them(rehearsal, built_site, name):
    from myst_nb.core.variables import format_plain_text

    source = json.loads((ROOT / "lessons" / f"{name}.ipynb").read_text())
    roles = GLUE_ROLE.findall("".join("".join(c["source"]) for c in source["cells"]))
    executed = json.loads(rehearsal.runs[f"{name}.ipynb"].executed.read_text())
    values = _glued_values(executed)
    page = re.sub(r"<[^>]+>", "", (built_site.html / "lessons" / f"{name}.html").read_text())
    assert "glue:text" not in page
    for key, spec in roles:
        assert key in values, f"{name}: nothing glued as {key!r}"
        shown = format_plain_text(values[key], spec or "")
        assert shown in page, f"{name}: {key} should read {shown!r}"


def _sidebar_entries(page) -> list[tuple[str, str]]:
    """(target page, text) of every link in the page's left sidebar, in order."""
    from bs4 import BeautifulSoup  # sphinx-book-theme's own dependency

    nav = BeautifulSoup(page.read_text(), "html.parser").select_one("nav.bd-docs-nav")
    base = page.parent.relative_to(page.parents[1])  # pages' links are relative to their folder
    return [
        # the page's own entry links to "#"
        ((base / (a["href"].split("#")[0] or page.name)).as_posix(), " ".join(a.get_text().split()))
        for a in nav.select("a.reference.internal")
    ]


@pytest.mark.parametrize("name", ["lessons/02_epochs", "book/glossary"])
def test_sidebar_lists_every_page_once_with_chapters_numbered_as_read(built_site, name):
    entries = _sidebar_entries(built_site.html / f"{name}.html")
    targets = [os.path.normpath(target).removesuffix(".html") for target, _ in entries]
    assert targets == toc_files()  # the toc's order, the home page first, each page once
    for target, text in zip(targets, (text for _, text in entries), strict=True):
        number = re.match(r"lessons/(\d\d)_", target)
        if number and number[1] != "00":  # chapter k is "k. Title", as its file is numbered
            assert text.startswith(f"{int(number[1])}. "), (target, text)
        else:  # setup, how-to and reference pages are not chapters
            assert not re.match(r"\d+\. ", text), (target, text)


_HIDDEN = {"remove-cell", "remove-output"}  # cells whose outputs the page leaves out
_BARE_NUMBER = re.compile(r"^\s*[-+]?(\d[\d_,.]*(e[-+]?\d+)?|nan|inf)\s*$", re.IGNORECASE)


def _stray_outputs(executed: dict) -> list[tuple[int, str, str]]:
    """(cell index, kind, text) of each output a reader would see unexplained: raw stderr
    (a warning's file path and line) and a bare number a cell's last line echoed."""
    stray = []
    for i, cell in enumerate(executed["cells"]):
        if _HIDDEN & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                stray.append((i, "stderr", "".join(out["text"])[:200]))
            plain = out.get("data", {}).get("text/plain")
            if out.get("output_type") == "execute_result" and plain is not None:
                text = plain if isinstance(plain, str) else "".join(plain)
                if _BARE_NUMBER.match(text):
                    stray.append((i, "bare number", text))
    return stray


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda p: p.name)
def test_no_raw_stderr_or_bare_number_reaches_the_page(rehearsal, notebook):
    executed = json.loads(rehearsal.runs[notebook.name].executed.read_text())
    assert _stray_outputs(executed) == [], "say it in a sentence (print, or the text) instead"


def test_stray_output_finder_sees_stderr_and_echoed_numbers_but_not_hidden_cells():
    def cell(outputs, tags=()):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "outputs": outputs}

    stderr = {"output_type": "stream", "name": "stderr", "text": ["UserWarning: x\n"]}
    echoed = {"output_type": "execute_result", "data": {"text/plain": "1.0304"}}
    words = {"output_type": "execute_result", "data": {"text/plain": "'ratio 1.03'"}}
    cells = [cell([stderr]), cell([echoed]), cell([words]), cell([stderr], ["remove-output"])]
    assert [(i, kind) for i, kind, _ in _stray_outputs({"cells": cells})] == [
        (0, "stderr"),
        (1, "bare number"),
    ]

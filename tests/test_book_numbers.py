"""The prose pages (book/*.md) state no number that nothing checks.

The pages have no code cells, so each number they state is listed in
``numerals_allowlist.toml`` under ``["book/<page>"]``: either ``"check: <expression>"``, an
expression over ``labpkg`` and ``math`` that this test evaluates and compares with the number
(the cheat sheet's worked example is ``labpkg.total_updates(1000, 100, 5)``, not a typed 50),
or a reason why no computation applies (a year, a version, a way to read the book).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import tomllib
from numerals import numerals_in, value, words_in
from numerals import prose as prose_of

import labpkg

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "book").glob("*.md"))
ALLOWLIST = tomllib.loads((Path(__file__).parent / "numerals_allowlist.toml").read_text())


def _entries(page: Path) -> dict[str, str]:
    return ALLOWLIST.get(f"book/{page.stem}", {})


def _stated(page: Path) -> list[str]:
    text = prose_of(page.read_text())
    return numerals_in(text) + words_in(text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_number_on_a_prose_page_is_checked_or_explained(page):
    entries = _entries(page)
    assert [n for n in _stated(page) if n not in entries] == [], (
        f'{page.name}: list these in numerals_allowlist.toml under ["book/{page.stem}"] '
        "with 'check: <expression>' or a reason"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_each_checked_number_is_what_its_expression_computes(page):
    for numeral, entry in _entries(page).items():
        assert numeral in _stated(page), f"{page.name}: {numeral!r} is no longer stated"
        if entry.startswith("check:"):
            computed = eval(entry.removeprefix("check:"), {"labpkg": labpkg, "math": math})
            assert math.isclose(computed, value(numeral)), f"{page.name} {numeral}: {computed}"
        else:
            assert len(entry.split()) >= 4, f"{page.name} {numeral}: give a reason"

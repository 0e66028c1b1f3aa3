"""The sentence as the page prints it: every number in a lesson's prose is computed or checked.

The rule is in ``numerals.py``: a number the text states is glued from a cell, checked by an
``assert`` of the same section, part of a checked exercise's question, or allowlisted with a
reason ("the same section": the value in an assert between the same two headings, not merely
a literal somewhere in the notebook). Each chapter also opens with learning goals and closes
with what the reader measured.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from numerals import (
    GLUE_ROLE,
    cells,
    numerals_in,
    prose_numerals,
    unchecked,
    value,
)

from labpkg.book import exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "lessons").glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]
ALLOWLIST = tomllib.loads((Path(__file__).parent / "numerals_allowlist.toml").read_text())
GLUE_CALL = re.compile(r"""labpkg\.glue\(\s*["']([^"']+)["']""")


def _markdown(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in cells(path) if c["cell_type"] == "markdown"]


def _code(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "code")


def _exercise_numbers(path: Path) -> set[float]:
    text = _code(path) + "\n".join(_markdown(path))  # check("03.1", ...) or (`"03.2"`)
    ids = set(re.findall(r"""check\(\s*["'](\d\d\.\d+)["']|`"(\d\d\.\d+)"`""", text))
    ids = {a or b for a, b in ids}
    text = " ".join(exercises.EXERCISES[i].question for i in ids if i in exercises.EXERCISES)
    return {value(n) for n in numerals_in(text)}


def _unexplained(path: Path) -> list[str]:
    allowed = set(ALLOWLIST.get(path.stem, {}))
    return [f"{n!r} in {where!r}" for n, where in unchecked(path, _exercise_numbers(path), allowed)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_numeral_in_the_prose_is_glued_checked_or_allowlisted(path):
    assert _unexplained(path) == [], (
        f"{path.name}: glue these from a cell, assert them in the same section, or add them "
        "with a reason to tests/numerals_allowlist.toml"
    )


def test_allowlist_entries_have_reasons_and_are_still_needed():
    for stem, entries in ALLOWLIST.items():
        if stem.startswith("book/"):
            continue  # the prose pages: tests/test_book_numbers.py
        (path,) = [p for p in NOTEBOOKS if p.stem == stem]
        stated = set(prose_numerals(path))
        needed = {n for n, _ in unchecked(path, _exercise_numbers(path), set())}  # else unchecked
        for numeral, reason in entries.items():
            assert len(reason.split()) >= 4, f"{stem} {numeral}: give a reason"
            assert numeral in stated, f"{stem} {numeral}: no longer in the prose; remove it"
            assert numeral in needed, f"{stem} {numeral}: now checked; remove it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_name_the_prose_uses_is_glued_by_a_cell(path):
    used = {name for text in _markdown(path) for name, _ in GLUE_ROLE.findall(text)}
    assert used <= set(GLUE_CALL.findall(_code(path)))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_opens_with_two_to_four_learning_goals(path):
    opening = "\n".join(_markdown(path)[:3])
    match = re.search(r":::\{admonition\} Learning goals\n((?:- .*\n(?:  .*\n)*)+):::", opening)
    assert match, f"{path.name}: no 'Learning goals' admonition near the top"
    goals = [line for line in match[1].splitlines() if line.startswith("- ")]
    assert 2 <= len(goals) <= 4


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_closes_with_what_you_measured_before_the_exercises(path):
    text = "\n".join(_markdown(path))
    assert "## What you measured" in text and "## Exercises" in text
    summary = text[text.index("## What you measured") : text.index("## Exercises")]
    assert summary.count("\n- ") >= 1


def _chapter_text(stem: str) -> str:
    return "\n".join(_markdown(ROOT / "lessons" / f"{stem}.ipynb"))


def test_chapter_7_describes_torchmetrics_absent_classes_as_it_behaves():
    # the behaviour itself is pinned in test_metrics.py against torchmetrics
    text = " ".join(_chapter_text("11_metrics").split())
    assert "does count it as 0" not in text
    assert "leaves it out of its default (macro) mean" in text


def test_the_capstone_explains_what_no_earlier_chapter_covers():
    text = _chapter_text("17_capstone")
    for term in ("**AdamW**", "**one-cycle**"):
        assert term in text, f"the capstone uses {term} without explaining it"

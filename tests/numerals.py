"""Find the numbers a lesson's prose states, and the numbers its code checks.

Used by ``test_lesson_text.py``. The rule: every number a chapter's text states, in digits
("384", "1,000", "50 %") or in words ("fifteen", "a quarter", "roughly doubles"), is

- glued from a cell (``{glue:text}`name```: the page prints what the cell computed), or
- checked by an ``assert`` in a code cell *of the same section* (between the same two
  headings): the value as a literal in the assert, or inside bounds the assert states
  (``assert 1.8 < ratio < 2.2`` checks "roughly doubles"), or
- part of the question of an exercise the section checks with ``labpkg.exercises``, or
- listed in ``numerals_allowlist.toml`` with a reason.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

_INLINE_CODE = re.compile(r"`[^`\n]*`")
#: {glue:text}`name` or {glue:text}`name:.3f`: the name and the format spec
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")  # {doc}`06_data`, {term}`epoch`, {glue:text}`x`
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)  # :class: dropdown
_LIST_MARKER = re.compile(r"^\s*(#+\s*)?\d+\.\s", re.M)  # "1. " of a list, "## 2. " of a heading
_HEADING = re.compile(r"^#{1,6} ", re.M)
# a numeral not glued to a word: "384", "1,000", "0.6931", "3e-3"; not "float16", "T4", "16-bit"
_NUMERAL = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w]|-bit|\.\d)")
_ORDINARY = "two three four five six seven eight nine ten eleven twelve thirteen fourteen "
_ORDINARY += "fifteen sixteen seventeen eighteen nineteen twenty"
#: numbers written as words, and their values ("one" is left out: it is mostly an article)
WORDS: dict[str, float] = {w: float(i) for i, w in enumerate(_ORDINARY.split(), start=2)}
WORDS |= {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
WORDS |= {"ninety": 90, "hundred": 100, "thousand": 1000, "million": 1e6, "tenfold": 10}
WORDS |= {"half": 0.5, "halves": 0.5, "halved": 0.5, "quarter": 0.25, "quarters": 0.25}
WORDS |= {"third": 1 / 3, "thirds": 1 / 3, "twice": 2, "double": 2, "doubles": 2}
WORDS |= {"doubled": 2, "triple": 3, "triples": 3, "tripled": 3}
_WORD = re.compile(r"\b(" + "|".join(WORDS) + r")\b", re.I)
_ORDINAL_THIRD = re.compile(r"\b(the|its|their|a|each) third\b(?! of)", re.I)  # "the third row"


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def without_code_blocks(text: str) -> str:
    """Drop fenced code blocks; keep the content of MyST directives (```{glossary}, ...)."""
    kept, fence = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = "directive" if stripped[3:].startswith("{") else marker
            continue
        if (
            fence is not None
            and stripped.startswith(("```", "~~~"))
            and stripped.strip()
            in (
                "```",
                "~~~",
            )
        ):
            fence = None
            continue
        if fence in (None, "directive"):
            kept.append(line)
    return "\n".join(kept)


def prose(text: str) -> str:
    """Markdown as read, without code, roles (glue, doc, term), link targets, list markers."""
    text = without_code_blocks(text)
    for pattern in (_ROLE, _INLINE_CODE, _LINK_TARGET, _DIRECTIVE_OPTION):
        text = pattern.sub(" ", text)
    return _LIST_MARKER.sub(" ", text)


def numerals_in(text: str) -> list[str]:
    """Every numeral of a plain text, as written (``"1,000"``, ``"0.25"``, ``"50 %"``)."""
    found = []
    for match in _NUMERAL.finditer(text):
        percent = re.match(r"\s?%", text[match.end() :])  # "50 %" states 0.5
        found.append(match[1] + (" %" if percent else ""))
    return found


def words_in(text: str) -> list[str]:
    """Every number written as a word ("fifteen", "half"), ordinal "the third ..." left out."""
    text = _ORDINAL_THIRD.sub(" ", text)
    return [match[1] for match in _WORD.finditer(text)]


def value(numeral: str) -> float:
    """``"1,000"`` -> 1000.0, ``"50 %"`` -> 0.5, ``"a quarter"`` -> 0.25."""
    if numeral.lower() in WORDS:
        return WORDS[numeral.lower()]
    number = numeral.removesuffix(" %")
    scale = 100 if numeral.endswith(" %") else 1
    return float(number.replace(",", "")) / scale


def prose_numerals(notebook: Path, words: bool = True) -> list[str]:
    """The numerals of every markdown cell, in order (with numbers written as words)."""
    found = []
    for cell in cells(notebook):
        if cell["cell_type"] == "markdown":
            text = prose("".join(cell["source"]))
            found += numerals_in(text) + (words_in(text) if words else [])
    return found


@dataclass
class Checks:
    """What the asserts of some code check: literal values, and bounds around a value."""

    values: set[float] = field(default_factory=set)
    bounds: list[tuple[float, float]] = field(default_factory=list)

    def cover(self, number: float) -> bool:
        close = any(abs(number - v) <= 1e-9 * max(1.0, abs(v)) for v in self.values)
        return close or any(low <= number <= high for low, high in self.bounds)


def _python(source: str) -> ast.Module:
    """A code cell as Python: an IPython magic line (%pip, !ls) becomes ``pass``."""
    lines = [
        line[: len(line) - len(line.lstrip())] + "pass"
        if line.lstrip().startswith(("%", "!"))
        else line
        for line in source.splitlines()
    ]
    return ast.parse(textwrap.dedent("\n".join(lines)))


def _constant(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constant(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    return None


def asserted(source: str) -> Checks:
    """The numbers the ``assert`` statements of ``source`` check."""
    checks = Checks()
    for node in ast.walk(_python(source)):
        if not isinstance(node, ast.Assert):
            continue
        for part in ast.walk(node.test):
            number = _constant(part)
            if number is not None:
                checks.values.add(number)
            if isinstance(part, ast.Compare) and len(part.ops) == 2:  # low < x < high
                ends = [_constant(part.left), _constant(part.comparators[1])]
                if None not in ends:
                    checks.bounds.append((min(ends), max(ends)))
    return checks


@dataclass
class Section:
    """The text between two headings, and the code cells that follow it there."""

    heading: str
    prose: str = ""
    code: str = ""


def sections(notebook: Path) -> list[Section]:
    """A notebook split at every heading, code cells kept with the section they sit in."""
    found = [Section("(top)")]
    for cell in cells(notebook):
        text = "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            found[-1].code += "\n" + text
            continue
        first, *rest = _HEADING.split(text)
        found[-1].prose += first
        found += [Section(part.splitlines()[0] if part else "", part) for part in rest]
    return found


def code_numbers(notebook: Path) -> set[float]:
    """Every number literal in the notebook's code cells (IPython magics left out)."""
    numbers: set[float] = set()
    for cell in cells(notebook):
        if cell["cell_type"] == "code":
            for node in ast.walk(_python("".join(cell["source"]))):
                number = _constant(node)
                if number is not None:
                    numbers.add(number)
    return numbers


def unchecked(
    notebook: Path, exercise_numbers: set[float], allowed: set[str]
) -> list[tuple[str, str]]:
    """The numbers stated in ``notebook``'s prose that nothing checks: (numeral, section)."""
    found = []
    for section in sections(notebook):
        checks = asserted(section.code)
        text = prose(section.prose)
        for numeral in numerals_in(text) + words_in(text):
            number = value(numeral)
            if checks.cover(number) or number in exercise_numbers or numeral in allowed:
                continue
            found.append((numeral, section.heading.strip()))
    return found

"""Find the numerals a lesson's prose states, and the numbers its code holds.

Used by ``test_numerals.py``: every numeral in a lesson's markdown must be glued from a cell,
be a number in the same notebook's code (an ``assert`` or a definition such as
``n_train = 384``), or be in ``numerals_allowlist.toml`` with a reason.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

_CODE_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
#: {glue:text}`name` or {glue:text}`name:.3f`: the name and the format spec
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")  # {doc}`06_data`, {term}`epoch`, {glue:text}`x`
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)  # :class: dropdown
_LIST_MARKER = re.compile(r"^\s*\d+\.\s", re.M)  # "1. " of a numbered list
# a numeral not glued to a word: "384", "1,000", "0.6931", "3e-3"; not "float16", "T4", "16-bit"
_NUMERAL = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w]|-bit|\.\d)")


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def prose_numerals(notebook: Path) -> list[str]:
    """The numerals of every markdown cell, in order (as written, e.g. ``"1,000"``)."""
    found = []
    for cell in cells(notebook):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for pattern in (_CODE_BLOCK, _ROLE, _INLINE_CODE, _LINK_TARGET, _DIRECTIVE_OPTION):
            text = pattern.sub(" ", text)
        found += numerals_in(_LIST_MARKER.sub(" ", text))
    return found


def numerals_in(text: str) -> list[str]:
    """Every numeral of a plain text, as written (``"1,000"``, ``"0.25"``, ``"50 %"``)."""
    found = []
    for match in _NUMERAL.finditer(text):
        percent = re.match(r"\s?%", text[match.end() :])  # "50 %" states 0.5
        found.append(match[1] + (" %" if percent else ""))
    return found


def value(numeral: str) -> float:
    """``"1,000"`` -> 1000.0, ``"50 %"`` -> 0.5."""
    number = numeral.removesuffix(" %")
    scale = 100 if numeral.endswith(" %") else 1
    return float(number.replace(",", "")) / scale


def code_numbers(notebook: Path) -> set[float]:
    """Every number literal in the notebook's code cells (IPython magics left out)."""
    numbers: set[float] = set()
    for cell in cells(notebook):
        if cell["cell_type"] != "code":
            continue
        source = "\n".join(  # a magic line becomes `pass`, so the cell still parses
            line[: len(line) - len(line.lstrip())] + "pass"
            if line.lstrip().startswith(("%", "!"))
            else line
            for line in "".join(cell["source"]).splitlines()
        )
        for node in ast.walk(ast.parse(textwrap.dedent(source))):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float):
                numbers.add(float(node.value))
    return numbers

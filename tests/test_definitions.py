"""Every core term is defined before a reader meets it, in the order the sidebar reads.

``TERMS`` names, for each core word, the chapter that defines it. A chapter read *before*
that one may use the word only as a link to its glossary entry (``{term}`word``), written with
a short gloss beside it; bare, it would be a word the reader has not been given yet. Code is
not prose: cells, inline code and the targets of links are left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, toc_files
from numerals import without_code_blocks

#: term -> (how the prose writes it, the chapter that defines it)
TERMS: dict[str, tuple[str, str]] = {
    "loss": (r"loss(es)?", "01_from_scratch"),
    "gradient": (r"gradients?", "01_from_scratch"),
    "forward pass": (r"forward pass(es)?", "01_from_scratch"),
    "backward pass": (r"backward pass(es)?|back-?propagation", "01_from_scratch"),
    "learning rate": (r"learning[- ]rates?", "01_from_scratch"),
    "optimizer": (r"optimi[sz]ers?", "01_from_scratch"),
    "update": (r"updates?|iterations?", "01_from_scratch"),
    "mini-batch": (r"mini-?batch(es)?", "01_from_scratch"),
    "batch size": (r"batch sizes?", "01_from_scratch"),
    "epoch": (r"epochs?", "01_from_scratch"),
    "validation set": (r"validation", "02_epochs"),
    "baseline": (r"baselines?", "02_epochs"),
    "metric": (r"metrics?", "02_epochs"),
    "cross-entropy": (r"cross-?entropy", "02_epochs"),
    "IoU": (r"IoU|intersection over union", "02_epochs"),
    "gradient accumulation": (r"accumulat(e|es|ed|ing|ion)", "03_iterations"),
    "BatchNorm": (r"BatchNorm|batch normali[sz]ation", "03_iterations"),
    "warm-up": (r"warm-?up", "04_batch_size"),
    "convolution": (r"convolutions?|convolutional", "04_batch_size"),
    "over-fitting": (r"over-?fit(s|ting|ted)?", "06_data"),
    "augmentation": (r"augment(s|ed|ing|ation|ations)?", "09_data_pipeline"),
    "momentum": (r"momentum", "12_optimizers"),
    "callback": (r"callbacks?", "02_epochs"),  # glossed in one line there; 14 teaches them
    "learning-rate schedule": (r"schedul(e|es|er|ers)", "13_learning_rate"),
    "mixed precision": (r"mixed precision", "15_gpu"),
    "autocast": (r"autocast", "15_gpu"),
    "GradScaler": (r"GradScalers?", "15_gpu"),
    "bfloat16": (r"bfloat16", "15_gpu"),
    "TF32": (r"TF32|TensorFloat-32", "15_gpu"),
    "channels_last": (r"channels[_ ]last", "15_gpu"),
    "pinned memory": (r"pinned", "15_gpu"),
}

_INLINE_CODE = re.compile(r"`[^`\n]*`")
_TERM_ROLE = re.compile(r"\{term\}`[^`]*`")
_OTHER_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_DIRECTIVE_LINE = re.compile(r"^(:::|```)\{?[\w-]*\}?.*$|^:[\w-]+:.*$", re.M)


def reading_order() -> list[str]:
    """Lesson stems in the order of the table of contents."""
    return [Path(f).name for f in toc_files() if f.startswith("lessons/")]


def prose(stem: str) -> str:
    """The chapter's markdown as a reader reads it: no code, glossary links kept apart."""
    cells = json.loads((ROOT / "lessons" / f"{stem}.ipynb").read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    text = without_code_blocks(text)
    for pattern in (_DIRECTIVE_LINE, _TERM_ROLE, _OTHER_ROLE, _INLINE_CODE):
        text = pattern.sub(" ", text)
    return _LINK_TARGET.sub("]", text)


def early_uses(order: list[str]) -> list[str]:
    """Every bare use of a term in a chapter read before the chapter that defines it."""
    found = []
    for term, (written, defined_in) in TERMS.items():
        if defined_in not in order:
            found.append(f"{term}: defined in {defined_in}, which is not in the book")
            continue
        pattern = re.compile(rf"\b({written})\b", re.I if term != "BatchNorm" else 0)
        for stem in order[: order.index(defined_in)]:
            for match in pattern.finditer(prose(stem)):
                found.append(f"{stem} uses {match[0]!r} before {defined_in} defines {term}")
    return found


def test_no_chapter_uses_a_core_term_before_the_chapter_that_defines_it():
    assert early_uses(reading_order()) == []


@pytest.mark.parametrize("term", TERMS)
def test_every_core_term_has_a_glossary_entry(term):
    glossary = (ROOT / "book" / "glossary.md").read_text()
    assert re.search(rf"^{re.escape(term)}$", glossary, re.M | re.I), term


def test_each_term_appears_in_the_chapter_said_to_define_it():
    for term, (written, defined_in) in TERMS.items():
        path = ROOT / "lessons" / f"{defined_in}.ipynb"
        cells = json.loads(path.read_text())["cells"] if path.exists() else []
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        assert re.search(rf"\b({written})\b", text, re.I), f"{defined_in} never says {term}"

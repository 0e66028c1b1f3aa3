"""Exercise answers: every chapter has checked exercises, and each checker knows the true answer.

The true answers below are worked by hand from each question's text, independently of the
lambdas in ``labpkg.exercises``: a wrong lambda, or a question whose numbers changed, fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labpkg.book import exercises

LESSONS = Path(__file__).resolve().parents[1] / "lessons"

TRUE_ANSWERS = {
    "01.1": 30,  # ceil(600 / 64) = 10 updates x 3 epochs
    "01.2": 1.885,  # errors -0.38, -0.28; dloss/dw = (-1.14 - 0.56) / 2 = -0.85; 1.8 + 0.085
    "01.3": 0.986,  # dloss/db = (-0.76 - 0.56) / 2 = -0.66; 0.92 + 0.066
    "02.1": 720_000,  # 60,000 images x 12 epochs
    "02.2": 320,  # 1024 / 16 = 64 mini-batches x 5 epochs
    "04.1": 40,  # 1000 - 15 x 64
    "04.2": 0.0625,  # variance ~ 1/b: 4/64
    "03.1": 7820,  # ceil(50000 / 128) = 391 x 20
    "03.2": 80,  # 50000 - 390 x 128
    "03.3": 1024,  # 32 x 4 x 8
    "06.1": 1700,  # 2000 - 300
    "06.2": 8,  # 200 - 6 x 32
    "08.1": 16,  # ceil(10 / 3) = 4 updates x 4 epochs
    "08.2": 16,  # 256 / 16
    "10.1": 0.1111,  # 1 - (3 + 1) / (3.5 + 1)
    "10.2": 1.3863,  # ln 4
    "11.1": 0.25,  # IoU per class 0, 0.5, 0.5, 0
    "11.2": 0.88,  # 88 of 100 pixels
    "12.1": 0.04,  # 0.02 / (1 - 0.5)
    "12.2": 39,  # ceil(400 / 32) = 13 updates x 3 epochs
    "12.3": 0.04,  # |1 - 50 lr| > 1 from lr = 2 / 50
    "12.4": 2.106,  # (1 - 0.9^10) / sqrt(1 - 0.99^10) = 0.6513 / 0.3092
    "12.5": 0.15,  # y' = (1.5 - 20 lr) y - 0.5 y_before: root -1 at 20 lr = 2 (1 + 0.5)
    "14.1": 17,  # best 7 + patience 10
    "14.2": 3.75e-4,  # 3e-3 / 8
    "14.3": 3,  # updates after mini-batches 4, 8 and 10 (the remainder group)
    "15.1": 65504,
    "15.2": 2,  # 8 -> 4 -> 2
    "15.3": 4096,  # 1024 doubled after steps 2000 and 4000
    "17.1": 640,  # 1024 / 8 = 128 updates x 5 epochs
    "17.2": 160,  # 1024 / 32 = 32 updates x 5 epochs
    "07.1": 824,  # 216 + 16 + 576 + 16
    "07.2": 32,  # 128 / 4
    "16.1": 196,  # ceil(50000 / 8) = 6250 per process, ceil(6250 / 32)
    "16.2": 0.8,  # the global batch grew 8x
    "16.3": 2,  # 64 / 4 = 16 samples per process, 4 mini-batches of 4, one update per 2
    "09.1": 0.04,  # 2 / 50
    "09.2": 103,  # base + worker id
    "05.1": 12,  # 4 updates x 3 epochs
    "05.2": 0.002,  # 1e-3 x sqrt(128 / 32) = 1e-3 x 2
    "13.1": 1.150,  # (10 / 1e-5) ** (1/99) = 10 ** (6/99) = 1.1498
    "13.2": 252,  # 63 updates (62 groups of 4 and one of 2) x 4 epochs
    "13.3": 0.999,  # 1 - lr * weight_decay = 1 - 1e-2 * 0.1
    "18.1": 184,  # 2944 / 16 = 184 exactly
    "18.2": 4,  # four output pixels
}


def test_every_exercise_has_a_hand_worked_answer():
    assert sorted(exercises.EXERCISES) == sorted(TRUE_ANSWERS)


@pytest.mark.parametrize("exercise", sorted(TRUE_ANSWERS))
def test_the_checker_accepts_the_true_answer_and_refuses_a_near_miss(exercise, capsys):
    answer = TRUE_ANSWERS[exercise]
    assert exercises.check(exercise, answer)
    assert "Correct!" in capsys.readouterr().out
    near_miss = answer * 1.01 + 0.001
    assert not exercises.check(exercise, near_miss)
    out = capsys.readouterr().out
    assert "Not yet. Hint:" in out and str(answer) not in out  # never shows the answer


def _checked_ids(notebook: Path) -> set[str]:
    cells = json.loads(notebook.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells)
    return set(re.findall(r"""check\(\s*["'](\d\d\.\d+)["']""", text)) | set(
        re.findall(r"""\(`"(\d\d\.\d+)"`\)""", text)
    )


CHAPTERS = sorted(p.name[:2] for p in LESSONS.glob("*.ipynb") if not p.name.startswith("00_"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_at_least_two_auto_checked_exercises(chapter):
    (notebook,) = LESSONS.glob(f"{chapter}_*.ipynb")
    ids = {i for i in _checked_ids(notebook) if i.startswith(chapter + ".")}
    assert len(ids) >= 2, f"{notebook.name} offers {sorted(ids)}"
    assert ids <= set(exercises.EXERCISES)

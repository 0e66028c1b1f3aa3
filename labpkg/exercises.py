"""Check an exercise answer without being shown the solution.

Every numeric exercise in the book has an id such as ``"03.1"``. ``check("03.1", 42)`` prints
whether 42 is right, and a hint if not; it never prints the expected value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from labpkg import counting

__all__ = ["EXERCISES", "check"]


@dataclass(frozen=True)
class Exercise:
    question: str
    answer: Callable[[], float]
    hint: str


EXERCISES: dict[str, Exercise] = {
    "01.1": Exercise(
        "A dataset of 60,000 images is trained for 12 epochs. How many images does the model "
        "see in total?",
        lambda: 60_000 * 12,
        "An epoch shows every image once.",
    ),
    "02.1": Exercise(
        "With 1,000 samples and batch size 64, how many samples are in the last batch?",
        lambda: 1000 - (counting.batches_per_epoch(1000, 64) - 1) * 64,
        "Fill as many full batches as you can; the last one holds what is left.",
    ),
    "03.1": Exercise(
        "50,000 samples, batch size 128, 20 epochs, no drop_last: how many updates in total?",
        lambda: counting.total_updates(50_000, 128, 20),
        "Round the batches per epoch up, then multiply by the epochs.",
    ),
    "03.2": Exercise(
        "Same, with drop_last=True: how many samples are never seen in one epoch?",
        lambda: 50_000 - counting.batches_per_epoch(50_000, 128, drop_last=True) * 128,
        "drop_last keeps only full batches.",
    ),
    "03.3": Exercise(
        "Batch 32, accumulate 4, on 8 GPUs: how many samples does one update average over?",
        lambda: counting.effective_batch_size(32, accumulate=4, world_size=8),
        "Multiply the three factors.",
    ),
    "04.1": Exercise(
        "2,000 samples with val_fraction=0.15: how many training samples?",
        lambda: 2000 - round(2000 * 0.15),
        "The validation set is taken out of the whole first.",
    ),
    "05.1": Exercise(
        "With accumulate_grad_batches=3 and 10 mini-batches per epoch, how many times does "
        "optimizer.step() run in 4 epochs?",
        lambda: counting.updates_per_epoch(10, 1, accumulate=3) * 4,
        "The last, smaller group of an epoch makes an update too.",
    ),
}


def check(exercise: str, answer: float) -> bool:
    """Say whether ``answer`` is right for ``exercise``; never print the expected value.

    Args:
        exercise: an id such as ``"03.1"`` (see ``EXERCISES``).
        answer: your number.

    Returns:
        True if right.

    Example:
        >>> check("01.1", 1)
        Not yet. Hint: An epoch shows every image once.
        False
    """
    if exercise not in EXERCISES:
        raise ValueError(f"unknown exercise {exercise!r}; known: {sorted(EXERCISES)}")
    item = EXERCISES[exercise]
    right = math.isclose(float(answer), float(item.answer()), rel_tol=1e-9, abs_tol=1e-9)
    print("Correct!" if right else f"Not yet. Hint: {item.hint}")
    return right

"""Check an exercise answer without being shown the solution.

Every numeric exercise in the book has an id such as ``"03.1"``. ``check("03.1", 42)`` prints
whether 42 is right, and a hint if not; it never prints the expected value.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from labpkg.core import counting

__all__ = ["EXERCISES", "check"]


@dataclass(frozen=True)
class Exercise:
    question: str
    answer: Callable[[], float]
    hint: str
    decimals: int | None = None  # answers rounded to this many decimals are right


def _dice(i: float, p: float, t: float, s: float) -> float:
    return (2 * i + s) / (p + t + s)


def _recipe_updates(**changes) -> int:
    from labpkg.recipes import Recipe  # imported here: recipes pulls in the whole trainer

    recipe = Recipe(epochs=5, **changes)
    return counting.total_updates(recipe.samples_per_epoch, recipe.batch_size, recipe.epochs)


def _third_update(w: float = 1.8, b: float = 0.92, lr: float = 0.1) -> tuple[float, float]:
    """w and b after the from-scratch chapter's third hand-worked update."""
    xs, ys = (1.5, 1.0), (4.0, 3.0)
    errors = [w * x + b - y for x, y in zip(xs, ys, strict=True)]
    grad_w = sum(2 * e * x for e, x in zip(errors, xs, strict=True)) / len(xs)
    grad_b = sum(2 * e for e in errors) / len(xs)
    return w - lr * grad_w, b - lr * grad_b


def _iou_of_counts(confusion: list[list[int]]) -> list[float]:
    """Per-class IoU of a small confusion matrix (rows: true, columns: predicted)."""
    c = len(confusion)
    out = []
    for k in range(c):
        tp = confusion[k][k]
        fp = sum(confusion[r][k] for r in range(c)) - tp
        fn = sum(confusion[k]) - tp
        out.append(tp / (tp + fp + fn))
    return out


EXERCISES: dict[str, Exercise] = {
    "01.1": Exercise(
        "A data set of 600 samples is trained for 3 epochs with batch size 64 by the "
        "from-scratch chapter's loop. How many updates does it make?",
        lambda: counting.total_updates(600, 64, 3),
        "One update per mini-batch; round the mini-batches per epoch up.",
    ),
    "01.2": Exercise(
        "The hand-worked example's third mini-batch: x = 1.5 and 1, y = 4 and 3, with w = 1.8 "
        "and b = 0.92. What is w after the update with learning rate 0.1? (3 decimals)",
        lambda: _third_update()[0],
        "error = w·x + b − y per sample; dloss/dw = mean of 2·error·x; w − 0.1 · dloss/dw.",
        decimals=3,
    ),
    "01.3": Exercise(
        "The same update: what is b after it? (3 decimals)",
        lambda: _third_update()[1],
        "dloss/db = mean of 2·error; b − 0.1 · dloss/db.",
        decimals=3,
    ),
    "02.1": Exercise(
        "A dataset of 60,000 images is trained for 12 epochs. How many images does the model "
        "see in total?",
        lambda: 60_000 * 12,
        "An epoch shows every image once.",
    ),
    "04.1": Exercise(
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
        "50,000 samples, batch size 128, drop_last=True: how many samples are never seen in "
        "one epoch?",
        lambda: 50_000 - counting.batches_per_epoch(50_000, 128, drop_last=True) * 128,
        "drop_last keeps only full batches.",
    ),
    "03.3": Exercise(
        "Batch 32, accumulate 4, on 8 GPUs: how many samples does one update average over?",
        lambda: counting.effective_batch_size(32, accumulate=4, world_size=8),
        "Multiply the three factors.",
    ),
    "06.1": Exercise(
        "2,000 samples with val_fraction=0.15: how many training samples?",
        lambda: 2000 - round(2000 * 0.15),
        "The validation set is taken out of the whole first.",
    ),
    "08.1": Exercise(
        "With accumulate_grad_batches=3 and 10 mini-batches per epoch, how many times does "
        "optimizer.step() run in 4 epochs?",
        lambda: counting.updates_per_epoch(10, 1, accumulate=3) * 4,
        "The last, smaller group of an epoch makes an update too.",
    ),
    "02.2": Exercise(
        "The epochs chapter's run: 1,024 training images, batch size 16, 5 epochs. How many "
        "mini-batches does the model process in total?",
        lambda: counting.batches_per_epoch(1024, 16) * 5,
        "Mini-batches per epoch times epochs.",
    ),
    "04.2": Exercise(
        "The gradient variance of batch size 4 is V. By the 1/b rule, what is the variance of "
        "batch size 64, as a fraction of V?",
        lambda: 4 / 64,
        "Variance is proportional to 1 / batch size.",
        decimals=4,
    ),
    "06.2": Exercise(
        "200 validation images in batches of 32: how many images are in the last batch?",
        lambda: 200 - (counting.batches_per_epoch(200, 32) - 1) * 32,
        "Six full batches take 192 images.",
    ),
    "08.2": Exercise(
        "The training-loop chapter's hand-written loop over 256 images in batches of 16: how "
        "many times does it call optimizer.zero_grad() in one epoch?",
        lambda: counting.batches_per_epoch(256, 16),
        "Once per mini-batch.",
    ),
    "10.1": Exercise(
        "The binary Dice example (p = [1, 0, 0.5, 0], t = [1, 0, 1, 0]) with smoothing s = 1: "
        "what is the Dice loss? (4 decimals)",
        lambda: 1 - _dice(i=1.5, p=1.5, t=2, s=1),
        "Dice = (2I + s) / (P + T + s) with I = 1.5, P = 1.5, T = 2.",
        decimals=4,
    ),
    "10.2": Exercise(
        "One pixel, four classes, all scores 0 (a model that knows nothing): its cross-entropy? "
        "(4 decimals)",
        lambda: math.log(4),
        "softmax gives each class 1/4; the loss is -ln of the true class's probability.",
        decimals=4,
    ),
    "11.1": Exercise(
        "In the 2×2 example (true [[0, 1], [1, 2]], predicted [[0, 1], [2, 2]]) the model now "
        "predicts class 3 on the background pixel. With num_classes=4, what is the mean IoU?",
        lambda: sum(_iou_of_counts([[0, 0, 0, 1], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])) / 4,
        "Class 0 loses its only pixel too; class 3 has TP = 0, FP = 1.",
        decimals=4,
    ),
    "11.2": Exercise(
        "A 10×10 mask holds 12 object pixels. What pixel accuracy does a model that predicts "
        "background everywhere score?",
        lambda: (100 - 12) / 100,
        "Correct pixels / all pixels.",
        decimals=4,
    ),
    "12.1": Exercise(
        "SGD with lr 0.02 and momentum 0.5 sees the same gradient g at every update. Its step "
        "approaches c * g: what is c?",
        lambda: 0.02 / (1 - 0.5),
        "The buffer b = 0.5·b + g settles where it no longer changes.",
        decimals=4,
    ),
    "12.2": Exercise(
        "400 images, batch size 32, 3 epochs, each epoch's last, smaller mini-batch kept. "
        "How many updates?",
        lambda: counting.total_updates(400, 32, 3),
        "A smaller last mini-batch is still an update: ceil(400 / 32) per epoch.",
    ),
    "12.3": Exercise(
        "On the valley ½·(x² + 50·y²), plain SGD multiplies y by (1 − 50·lr) at every "
        "update. Above which learning rate does y grow instead of shrink?",
        lambda: 2 / 50,
        "y grows when |1 − 50·lr| > 1.",
        decimals=4,
    ),
    "12.4": Exercise(
        "Adam without bias correction, β₁ = 0.9 and β₂ = 0.99, the same gradients as Adam: "
        "at update 10, its step is how many times Adam's step?",
        lambda: (1 - 0.9**10) / math.sqrt(1 - 0.99**10),
        "m lacks the factor 1 − β₁ᵗ and √v lacks √(1 − β₂ᵗ).",
        decimals=2,
    ),
    "12.5": Exercise(
        "SGD with momentum 0.5 on the valley ½·(x² + 20·y²): above which learning rate does "
        "y grow instead of shrink?",
        lambda: 2 * (1 + 0.5) / 20,
        "With momentum μ, y' = (1 + μ − 20·lr)·y − μ·y_before; it stays bounded while both "
        "roots of z² − (1 + μ − 20·lr)·z + μ lie inside the unit circle.",
        decimals=4,
    ),
    "14.1": Exercise(
        "EarlyStopping(patience=10): the best val_loss is at epoch 7 (1-based) and never "
        "improves again. After which epoch (1-based) does training stop?",
        lambda: 7 + 10,
        "It waits patience epochs after the best one.",
    ),
    "14.2": Exercise(
        "ReduceLROnPlateau(factor=0.5) reduces the learning rate 3 times, starting from 3e-3. "
        "What is the learning rate then?",
        lambda: 3e-3 * 0.5**3,
        "Each reduction multiplies by the factor.",
        decimals=8,
    ),
    "14.3": Exercise(
        "accumulate_grad_batches=4 and an epoch of ten mini-batches: how many times does "
        "on_after_backward run in the epoch?",
        lambda: counting.updates_per_epoch(10, 1, accumulate=4),
        "It runs once per optimizer update; the last, smaller group is an update too.",
    ),
    "15.1": Exercise(
        "What is the largest finite float16 number?",
        lambda: 65504,
        "(2 - 2**-10) * 2**15.",
    ),
    "15.2": Exercise(
        "A GradScaler with scale 8 meets overflowing gradients twice in a row. Its scale then?",
        lambda: 8 * 0.5**2,
        "Each skipped step halves the scale (backoff_factor=0.5).",
    ),
    "15.3": Exercise(
        "A GradScaler with the default growth_factor=2.0 and growth_interval=2000 is at scale "
        "1024 and then runs 5000 steps without an overflow. What is its scale then?",
        lambda: 1024 * 2.0 ** (5000 // 2000),
        "It doubles after every 2000 steps in a row without an overflow: twice here.",
    ),
    "17.1": Exercise(
        "labpkg.Recipe(epochs=5): how many optimizer updates does the whole run make?",
        lambda: _recipe_updates(),
        "samples_per_epoch / batch_size updates per epoch.",
    ),
    "17.2": Exercise(
        "The same with batch_size=32: how many updates?",
        lambda: _recipe_updates(batch_size=32),
        "A quarter as many.",
    ),
    "07.1": Exercise(
        "How many parameters does the U-Net's stem have with base_width=8 (3 input channels, "
        "BatchNorm after each convolution)?",
        lambda: 9 * 3 * 8 + 2 * 8 + 9 * 8 * 8 + 2 * 8,
        "Two 3x3 convolutions without bias (9 * c_in * c_out) and two BatchNorms (2 per channel).",
    ),
    "07.2": Exercise(
        "For a 128×128 input, what height does the output of the U-Net's downs.1 have?",
        lambda: 128 // 2**2,
        "downs.0 and downs.1 each halve it.",
    ),
    "16.1": Exercise(
        "50,000 samples, 8 processes, batch 32 per process, no accumulation: how many updates "
        "per epoch?",
        lambda: counting.updates_per_epoch(50_000, 32, world_size=8),
        "Each process reads ceil(50000 / 8) samples, in batches of 32.",
    ),
    "16.2": Exercise(
        "A learning rate of 0.1 suited one process with batch 32, with SGD. By the "
        "linear-scaling rule, what rate suits 8 processes with batch 32 each?",
        lambda: 0.1 * counting.effective_batch_size(32, world_size=8) / 32,
        "Multiply by the growth of the global batch.",
        decimals=6,
    ),
    "16.3": Exercise(
        "64 samples, batch 4 per process, accumulate_grad_batches=2, started with "
        "--nproc_per_node=4 instead of 2: how many updates per epoch does each process make?",
        lambda: counting.updates_per_epoch(64, 4, accumulate=2, world_size=4),
        "Each process reads 64 / 4 samples per epoch, in mini-batches of 4.",
    ),
    "09.1": Exercise(
        "Loading a batch takes 2 ms and training on it 48 ms. What share of the time is loading?",
        lambda: 2 / (2 + 48),
        "loading / (loading + training).",
        decimals=4,
    ),
    "09.2": Exercise(
        "A DataLoader with 4 workers draws the base seed 100 for an epoch. What torch seed does "
        "worker 3 get?",
        lambda: 100 + 3,
        "PyTorch gives worker k the seed base + k.",
    ),
    "05.1": Exercise(
        "256 samples, batch 64, 3 epochs: how many optimizer updates?",
        lambda: counting.total_updates(256, 64, 3),
        "Updates per epoch times epochs.",
    ),
    "05.2": Exercise(
        "By the square-root scaling rule (Adam), what learning rate goes with batch 128 if 1e-3 "
        "suits batch 32?",
        lambda: 1e-3 * math.sqrt(128 / 32),
        "The batch grows 4-fold; the rule multiplies the rate by the square root of that.",
        decimals=6,
    ),
    "13.1": Exercise(
        "A range test from 1e-5 to 10 over 100 updates multiplies the rate by a constant factor "
        "after every update. What is the factor?",
        lambda: (10 / 1e-5) ** (1 / 99),
        "99 steps lie between the first and the last rate: factor ** 99 = 10 / 1e-5.",
        decimals=3,
    ),
    "13.2": Exercise(
        "OneCycleLR, 4 epochs of 250 mini-batches, accumulate_grad_batches=4: total_steps?",
        lambda: counting.total_updates(250, 1, 4, accumulate=4),
        "ceil(250 / 4) updates per epoch (the last group holds 2), times 4 epochs.",
    ),
    "13.3": Exercise(
        "AdamW at rate 1e-2 with weight_decay=0.1: by what factor does one update multiply a "
        "decayed weight, before Adam's step?",
        lambda: 1 - 1e-2 * 0.1,
        "Decoupled decay: w <- w * (1 - lr * weight_decay), with the rate of that update.",
        decimals=4,
    ),
    "18.1": Exercise(
        "3680 images, 80 % for training, mini-batches of 16 (drop_last=False): mini-batches per "
        "epoch?",
        lambda: counting.batches_per_epoch(round(0.8 * 3680), 16),
        "0.8 × 3680 = 2944 training images; ceil(2944 / 16).",
    ),
    "18.2": Exercise(
        "A 4×4 mask resized to 2×2 by nearest neighbour: at most how many different labels?",
        lambda: 2 * 2,
        "Each output pixel copies one input pixel's label: count the output pixels.",
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
        >>> check("02.1", 1)
        Not yet. Hint: An epoch shows every image once.
        False
    """
    if exercise not in EXERCISES:
        raise ValueError(f"unknown exercise {exercise!r}; known: {sorted(EXERCISES)}")
    item = EXERCISES[exercise]
    expected = float(item.answer())
    if item.decimals is not None:  # a reader types a rounded number
        right = abs(float(answer) - expected) <= 0.5 * 10.0**-item.decimals + 1e-12
    else:
        right = math.isclose(float(answer), expected, rel_tol=1e-9, abs_tol=1e-9)
    # wrapped to the width of the book's code column, where the page shows the output
    print("Correct!" if right else textwrap.fill(f"Not yet. Hint: {item.hint}", width=72))
    return right

"""Epoch metrics (IoU + Dice + accuracy from one matrix) vs a bare bincount, and vs torchmetrics.

Run: .venv/bin/python benchmarks/metrics_speed.py
Goal: labpkg's SegmentationMetrics.update <= 1.2x a bare ``bincount`` confusion matrix, with
identical numbers (both end with accuracy, mean IoU and mean Dice from their matrix);
"unchecked" is ``validate_args=False``, the path of every mini-batch after the first in the
Trainer (out-of-range labels counted, refused when the score is computed).
torchmetrics MulticlassJaccardIndex is run with its default arguments
(``validate_args=True``), as a user would.
"""

from __future__ import annotations

import torch
from _timing import paired_ratio
from torchmetrics.classification import MulticlassJaccardIndex

from labpkg.nn.metrics import (
    SegmentationMetrics,
    dice_from_confusion,
    iou_from_confusion,
    pixel_accuracy_from_confusion,
)


def bare_bincount(preds: torch.Tensor, target: torch.Tensor, c: int) -> torch.Tensor:
    """The least work a confusion matrix can take: (argmax,) one fused index, one bincount.
    (``t * c + p`` would take two passes and a temporary: twice the time at 16 x 256 x 256.)
    The argmax goes through ``max``, as labpkg's does: ``argmax(1)`` of NCHW scores takes
    several times longer on a CPU, and would time the argmax rather than the matrix."""
    labels = preds.max(1).indices if preds.ndim == 4 else preds
    index = torch.add(labels.reshape(-1), target.reshape(-1), alpha=c)
    return torch.bincount(index, minlength=c * c).reshape(c, c)


def bare_scores(cm: torch.Tensor) -> list[torch.Tensor]:
    """What ``SegmentationMetrics.scores()`` returns, from a bare matrix: accuracy, mean IoU
    and mean Dice (the same pure functions, so both sides do the same work at the end)."""
    iou, dice = iou_from_confusion(cm), dice_from_confusion(cm)
    return [pixel_accuracy_from_confusion(cm), iou.nanmean(), dice.nanmean()]


def case(batch: int, size: int, c: int, labels: bool, batches: int = 8, pairs: int = 9) -> str:
    gen = torch.Generator().manual_seed(0)
    data = [
        (
            torch.randn(batch, c, size, size, generator=gen),
            torch.randint(0, c, (batch, size, size), generator=gen),
        )
        for _ in range(batches)
    ]
    if labels:  # predictions already argmaxed: the matrix itself is all that is timed
        data = [(scores.argmax(1), target) for scores, target in data]
    ours, tm = SegmentationMetrics(c), MulticlassJaccardIndex(num_classes=c, average=None)
    # the Trainer checks the first mini-batch of a pass and updates the rest unchecked
    later = SegmentationMetrics(c, validate_args=False)

    def run_bare():  # the same scores as labpkg's, from the bare matrix
        cm = torch.zeros(c, c, dtype=torch.long)
        for scores, target in data:
            cm += bare_bincount(scores, target, c)
        return cm, bare_scores(cm)

    def run_ours():
        ours.reset()
        for scores, target in data:
            ours.update(scores, target)
        return ours.scores()

    def run_later():
        later.reset()
        for scores, target in data:
            later.update(scores, target)
        return later.scores()

    def run_tm():
        tm.reset()
        for scores, target in data:
            tm.update(scores, target)
        return tm.compute()

    bare_cm, _ = run_bare()
    run_ours(), run_later()
    assert torch.equal(ours.confmat, bare_cm), "labpkg's matrix differs from the bare one"
    assert torch.equal(later.confmat, bare_cm), "the unchecked matrix differs from the bare one"
    torch.testing.assert_close(iou_from_confusion(bare_cm).float(), run_tm())
    ratio_ours, t_bare, t_ours = paired_ratio(run_bare, run_ours, pairs=pairs)
    ratio_later, _, _ = paired_ratio(run_bare, run_later, pairs=pairs)
    ratio_tm, _, t_tm = paired_ratio(run_bare, run_tm, pairs=5)
    label = f"({batch}, {size}, {size}) x {c} {'labels' if labels else 'scores'}"
    return (
        f"{label:<28} bare {t_bare * 1000:7.1f} ms  labpkg {ratio_ours:5.2f}x  "
        f"unchecked {ratio_later:5.2f}x  torchmetrics {ratio_tm:5.1f}x"
    )


def main() -> None:
    torch.set_num_threads(1)
    # small batches take milliseconds: many pairs are cheap, and their ratio moved by ±0.1
    # from run to run with 9; the large ones take half a second a run
    cases = [(32, 64, 3, labels, 8, 61) for labels in (False, True)]
    cases += [(16, 256, 21, labels, 8, 9) for labels in (False, True)]
    # one untimed pass over every case first: the first case timed in a fresh process ran
    # its bare side a third slower than later ones (the memory allocator's first requests
    # for these sizes), which printed 0.82x for the small scores where later runs gave 1.04x
    for shape in cases:
        case(*shape[:4], batches=2, pairs=1)
    for shape in cases:
        print(case(*shape), flush=True)


if __name__ == "__main__":
    main()

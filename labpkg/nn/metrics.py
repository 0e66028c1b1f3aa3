"""Segmentation metrics that accumulate over an epoch: pixel accuracy, mean IoU and Dice.

Each metric holds one C×C confusion matrix (``labpkg.nn.confusion``) summed over every batch of
an epoch and divides only at the end: *dataset-level* scores. Averaging per-batch IoU instead
mixes a batching artefact into the number (it changes with the batch size, and a batch
without a class would count as a score); a per-image mean is a different, legitimate metric
(chapter 11). ``update`` never waits for the device; ``results`` reads the scores
back once per epoch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from labpkg.core.checks import labels_outside_message
from labpkg.nn import confusion
from labpkg.nn.confusion import (
    confusion_matrix,
    count_pairs,
    dice_from_confusion,
    iou_from_confusion,
    pixel_accuracy_from_confusion,
)
from labpkg.nn.labels import check_metric_setup, to_labels

__all__ = [
    "Metric",
    "declared_log_keys",
    "ConfusionMetric",
    "PixelAccuracy",
    "MeanIoU",
    "DiceCoefficient",
    "SegmentationMetrics",
    "confusion_matrix",
    "iou_from_confusion",
    "dice_from_confusion",
    "pixel_accuracy_from_confusion",
]


@runtime_checkable
class Metric(Protocol):
    """What ``Trainer`` expects of a metric; write your own with these members.

    Every ``fit`` calls the first four: ``reset()`` at the start of each epoch (and of each
    validation), ``update(scores, target)`` after every mini-batch with the model's raw scores
    (B, C, H, W) and the target, ``sync(all_reduce_sum)`` under data parallelism before
    reading (sum your state across processes with it, in place), and ``results()`` once at
    the end: plain floats keyed by log name (the Trainer adds ``val_`` for validation).

    The others are asked for only where they are used: ``state_dict()`` and
    ``load_state_dict()`` by a mid-epoch checkpoint (``ModelCheckpoint(save_freq=k)``), which
    must keep the epoch's counts; ``higher_is_better`` by a callback's ``mode="auto"``, and
    ``log_keys()`` (the keys ``results()`` will hold) by it and by a ``ModelCheckpoint`` file
    name template, checked before training.
    """

    higher_is_better: bool

    def reset(self) -> None: ...
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None: ...
    def sync(self, all_reduce_sum: Callable[[torch.Tensor], None]) -> None: ...
    def results(self) -> dict[str, float]: ...
    def log_keys(self) -> list[str]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def declared_log_keys(metric: object) -> list[str] | None:
    """The keys ``metric`` says its ``results()`` will hold (``log_keys()``); None if it does
    not say (a metric of the user's written with the four methods every fit calls)."""
    return metric.log_keys() if hasattr(metric, "log_keys") else None


class ConfusionMetric:
    """Base of the stateful metrics: one summed confusion matrix (C, C); ``scores`` scores it.

    A subclass names its score (``name``) and computes it from a matrix (``_scores``);
    ``compute()`` gives it as a tensor, ``results()`` as floats for the logs.

    Args:
        num_classes: C >= 2 (2 in binary mode).
        mode: ``"multiclass"`` (argmax over scores) or ``"binary"`` (sigmoid > threshold).
        ignore_index: target value whose pixels are skipped (default None).
        include_background: keep class 0 in the mean (default True).
        per_class: scores of one value per class (C,) instead of the mean.
        threshold: binary mode probability threshold (default 0.5).
        validate_args: check every ``update``'s labels at once (a host read). With False the
            labels are still counted, and reading the scores raises if any was outside [0, C).

    Scores with a NaN or +inf (a diverged model) make every value NaN, with a warning: the
    argmax of all-NaN scores is class 0 everywhere, an all-background guess that could
    outscore a healthy model. (A -inf beside finite scores decides no pixel and is let
    through; all of a pixel's scores -inf are caught.)
    """

    name = "metric"
    #: True, as every score here (accuracy, IoU, Dice) is better higher, so ``mode="auto"``
    #: maximises it
    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        mode: str = "multiclass",
        ignore_index: int | None = None,
        include_background: bool = True,
        per_class: bool = False,
        threshold: float = 0.5,
        validate_args: bool = True,
    ) -> None:
        check_metric_setup(mode, num_classes)
        self.num_classes, self.mode, self.ignore_index = num_classes, mode, ignore_index
        self.include_background, self.per_class = include_background, per_class
        self.threshold, self.validate_args = threshold, validate_args
        # (C·C + 2,): pixel pairs, then out-of-range labels, then batches with non-finite scores
        self.counts: torch.Tensor | None = None

    @property
    def confmat(self) -> torch.Tensor:
        """The summed confusion matrix (C, C); zeros before the first update."""
        c = self.num_classes
        if self.counts is None:
            return torch.zeros(c, c, dtype=torch.long)
        return self.counts[: c * c].reshape(c, c)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch to the matrix (kept on the input's device; no host sync)."""
        labels, target, deciding = to_labels(
            preds, target, self.num_classes, self.mode, self.threshold
        )
        c, ignore_index = self.num_classes, self.ignore_index
        counts = count_pairs(preds, labels, target, c, ignore_index, self.validate_args)
        if self.counts is None:
            self.counts = counts.new_zeros(counts.numel() + 1)
        self.counts[:-1].add_(counts)  # in place: no new tensor per batch
        if deciding is not None:  # labels cannot be NaN; scores can
            _count_nonfinite(self.counts[-1:], deciding)

    def reset(self) -> None:
        """Forget every batch seen (the Trainer calls it at the start of each epoch)."""
        self.counts = None

    def state_dict(self) -> dict:
        """A copy of the counts so far (a mid-epoch checkpoint keeps them).

        A copy, not the live tensor: ``update`` adds to the counts in place, so a snapshot
        that aliased them would keep changing, and two metrics loaded from it would share one.
        """
        return {"counts": None if self.counts is None else self.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Load a copy of ``state_dict()``'s counts; refused if they have another size.

        Raises:
            ValueError: the counts are of another number of classes (C·C + 2 of them).
        """
        counts = state["counts"]
        expected = self.num_classes**2 + 2
        if counts is not None and tuple(counts.shape) != (expected,):
            found = math.isqrt(max(counts.numel() - 2, 0))
            saved = f"num_classes={found}" if found**2 + 2 == counts.numel() else "another size"
            raise ValueError(
                f"{type(self).__name__}(num_classes={self.num_classes}) cannot load the counts "
                f"of a metric with {saved}: build it with the num_classes of the saved one"
            )
        self.counts = None if counts is None else counts.clone()

    def sync(self, all_reduce_sum: Callable[[torch.Tensor], None]) -> None:
        """Sum the counts across processes (data parallel); ``all_reduce_sum`` is in place."""
        if self.counts is None:
            self.counts = torch.zeros(self.num_classes**2 + 2, dtype=torch.long)
        all_reduce_sum(self.counts)

    def _checked_matrix(self) -> torch.Tensor:
        """The matrix, or all-NaN if any batch had NaN/inf scores (argmax of NaN is class 0:
        an all-background guess that can outscore a healthy model, so no number is given)."""
        if self.counts is None:
            return self.confmat
        outside, nonfinite = self.counts[-2:].tolist()  # one host read
        if outside > 0:
            message = labels_outside_message("true or predicted", self.num_classes, count=outside)
            raise ValueError(message)
        if nonfinite > 0:
            warnings.warn(
                f"{type(self).__name__}: {nonfinite} mini-batch(es) had NaN/inf scores; "
                "the metric is NaN (check the loss and learning rate)",
                stacklevel=3,
            )
            return torch.full_like(self.confmat, math.nan, dtype=torch.float64)
        return self.confmat

    def _reduce(self, per_class: torch.Tensor) -> torch.Tensor:
        if self.mode == "binary":
            return per_class[1]  # foreground score, as the binary task asks
        if not self.include_background:
            per_class = per_class[1:]
        return per_class if self.per_class else per_class.nanmean()

    def _scores(self, cm: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each score from the matrix ``cm`` (C, C), keyed by log name."""
        raise NotImplementedError

    def scores(self) -> dict[str, torch.Tensor]:
        """Each score so far as a tensor (0-d, or (C,) with ``per_class``), keyed by log name."""
        return self._scores(self._checked_matrix())

    def compute(self) -> torch.Tensor:
        """The score so far as a tensor: 0-d, or (C,) with ``per_class``."""
        return self.scores()[self.name]

    def results(self) -> dict[str, float]:
        """Plain floats for logs: ``{name: mean}`` plus ``{name}_{k}`` per class if asked.

        This is the host sync point: call it once per epoch, not per batch.
        """
        out: dict[str, float] = {}
        for name, value in self.scores().items():
            out.update(self._log_values(name, value))
        return out

    def log_keys(self) -> list[str]:
        """The keys ``results()`` holds, known before any update (from an empty matrix)."""
        empty = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        scores = self._scores(empty)  # NaN of each score's shape: the same keys
        return [key for name, value in scores.items() for key in self._log_values(name, value)]

    def _log_values(self, name: str, value: torch.Tensor) -> dict[str, float]:
        if value.ndim == 0:
            return {name: float(value)}
        first = 0 if self.include_background else 1
        out = {name: float(value.nanmean())}
        out.update({f"{name}_{first + k}": float(v) for k, v in enumerate(value)})
        return out


class PixelAccuracy(ConfusionMetric):
    """Share of valid pixels labelled correctly (micro accuracy over the dataset).

    Example:
        >>> m = PixelAccuracy(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> m.compute().item()
        0.75
    """

    name = "pixel_accuracy"

    def _scores(self, cm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.name: pixel_accuracy_from_confusion(cm)}


class MeanIoU(ConfusionMetric):
    """Dataset-level IoU per class, averaged over classes that occur (NaN ones are skipped).

    Example:
        >>> m = MeanIoU(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> round(m.compute().item(), 4)
        0.6667
    """

    name = "mean_iou"

    def _scores(self, cm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.name: self._reduce(iou_from_confusion(cm))}


class DiceCoefficient(ConfusionMetric):
    """Dataset-level Dice per class, averaged over classes that occur.

    Example:
        >>> m = DiceCoefficient(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> round(m.compute().item(), 4)
        0.7778
    """

    name = "dice"

    def _scores(self, cm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.name: self._reduce(dice_from_confusion(cm))}


class SegmentationMetrics(ConfusionMetric):
    """Pixel accuracy, mean IoU and Dice from one shared matrix (one count per batch).

    Example:
        >>> m = SegmentationMetrics(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> {k: round(v, 4) for k, v in m.results().items()}
        {'pixel_accuracy': 0.75, 'mean_iou': 0.6667, 'dice': 0.7778}
        >>> m.log_keys() == list(m.results())  # known before any update as well
        True
    """

    name = "segmentation"

    def _scores(self, cm: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "pixel_accuracy": pixel_accuracy_from_confusion(cm),
            "mean_iou": self._reduce(iou_from_confusion(cm)),
            "dice": self._reduce(dice_from_confusion(cm)),
        }

    def compute(self) -> torch.Tensor:
        """Refused: there are three scores, and ``compute`` gives one tensor."""
        raise TypeError(
            "SegmentationMetrics holds three scores: scores() gives them as tensors by name, "
            "results() as floats"
        )


def _count_nonfinite(count: torch.Tensor, deciding: torch.Tensor) -> None:
    """Add 1 to ``count`` (1,) int64 if the float32 sum of the scores that decided the labels
    (each pixel's top score; binary: the logits) is NaN/inf: whenever one of them is NaN/inf,
    and also if finite ones add up past float32's range (about 3.4·10³⁸), which only a
    diverged model's scores reach. A pixel's top score is NaN/inf when any of its scores is
    NaN or +inf, or all are -inf; a -inf beside finite scores decides nothing and is let
    through. One reduction over one value per pixel; the test of its result stays on a GPU
    (no host read there), and on a CPU, where reading it back is free, is a Python test,
    which costs less than the three small tensor operations it replaces."""
    total = torch.sum(deciding, dtype=torch.float32)  # (N, H, W) -> 0-d
    if not confusion.host_reads_are_free(deciding.device):
        count.add_(~total.isfinite())  # a bool added as 0 or 1
    elif not math.isfinite(total.item()):
        count.add_(1)

"""Segmentation metrics from one confusion matrix: pixel accuracy, IoU and Dice.

All three are computed from a C×C matrix of pixel counts (rows: true class, columns: predicted
class) summed over every batch of an epoch. Dividing only at the end gives *dataset-level*
scores. Averaging per-batch IoU instead gives a different, wrong number (a batch without a class
says nothing about that class, yet would count as a score).

- IoU = TP / (TP + FP + FN), Dice = 2TP / (2TP + FP + FN), accuracy = ΣTP / valid pixels.
- A class with TP + FP + FN = 0 (absent and never predicted) is NaN and left out of the mean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from labpkg.checks import check_class_target, check_labels

__all__ = [
    "HIGHER_IS_BETTER",
    "confusion_matrix",
    "iou_from_confusion",
    "dice_from_confusion",
    "pixel_accuracy_from_confusion",
    "PixelAccuracy",
    "MeanIoU",
    "DiceCoefficient",
    "SegmentationMetrics",
    "ConfusionMetric",
]

#: Log names whose value should go up; ``mode="auto"`` in callbacks maximises these.
HIGHER_IS_BETTER = frozenset({"pixel_accuracy", "mean_iou", "iou", "dice", "accuracy"})
_MODES = ("multiclass", "binary")


def confusion_matrix(
    preds: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    mode: str = "multiclass",
    threshold: float = 0.5,
) -> torch.Tensor:
    """Count pixels by (true class, predicted class) with a single ``bincount``.

    Args:
        preds: class scores (N, C, H, W), argmaxed over dim 1, or labels (N, H, W). In binary
            mode: logits (N, H, W) or (N, 1, H, W), thresholded after a sigmoid, or 0/1 labels.
        target: int64 labels (N, H, W) (binary mode also accepts (N, 1, H, W)).
        num_classes: C >= 2 (2 in binary mode).
        ignore_index: target value whose pixels are skipped (default None).
        mode: ``"multiclass"`` (default) or ``"binary"``.
        threshold: binary mode probability threshold (default 0.5).

    Returns:
        int64 tensor (C, C) on the input's device; ``cm[t, p]`` counts pixels of class t
        predicted as p.

    Example:
        >>> t = torch.tensor([[[0, 1], [1, 2]]])
        >>> p = torch.tensor([[[0, 1], [2, 2]]])
        >>> confusion_matrix(p, t, num_classes=3).tolist()
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    labels, target = _to_labels(preds, target, num_classes, mode, threshold)
    c = num_classes
    index = target * c + labels  # (N, H, W): one bin per (true, predicted) pair
    if ignore_index is None:
        # labels are checked for free: a label >= C makes an index >= C², so the bincount
        # comes out longer than C²; a negative label makes a negative index, which it refuses
        counts = _bincount_or_explain(index, c * c, target, c)
        if counts.numel() > c * c:
            check_labels(target, c, None)  # raises, naming the bad labels
        return counts.reshape(c, c)
    check_labels(target, c, ignore_index)  # an ignored value must not hide a bad label
    # ignored pixels go to an extra bin that is dropped: no boolean indexing, no host sync
    index = torch.where(target == ignore_index, c * c, index)
    counts = torch.bincount(index.reshape(-1), minlength=c * c + 1)
    return counts[: c * c].reshape(c, c)


def _bincount_or_explain(index, length, target, num_classes) -> torch.Tensor:
    try:
        return torch.bincount(index.reshape(-1), minlength=length)
    except RuntimeError:  # negative labels: let check_labels say which
        check_labels(target, num_classes, None)
        raise


def _to_labels(preds, target, num_classes, mode, threshold):
    _check_mode(mode, num_classes)
    if mode == "multiclass":
        check_class_target(target)
    elif target.is_floating_point():
        raise TypeError(f"target must hold integer class ids (int64), got dtype {target.dtype}")
    if mode == "binary":
        if num_classes != 2:
            raise ValueError(f"binary mode has num_classes=2, got {num_classes}")
        preds, target = _squeeze_channel(preds), _squeeze_channel(target)
        if preds.is_floating_point():
            preds = torch.sigmoid(preds.float()) > threshold
        labels = preds.long()
    elif preds.ndim == target.ndim + 1:
        if preds.shape[1] != num_classes:
            raise ValueError(f"preds have {preds.shape[1]} channels but num_classes={num_classes}")
        labels = preds.argmax(dim=1)  # (N, C, H, W) -> (N, H, W)
    else:
        if preds.is_floating_point():
            raise TypeError("label preds must be integers; pass (N, C, H, W) scores to argmax")
        labels = preds.long()
        # a predicted label >= C would land in another class's bin: check it (one pass)
        check_labels(labels, num_classes, None, name="preds")
    if labels.shape != target.shape:
        raise ValueError(
            f"preds and target differ in shape: {tuple(labels.shape)} vs {tuple(target.shape)}"
        )
    return labels, target.long()


def _check_mode(mode: str, num_classes: int) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")


def _squeeze_channel(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU = TP / (TP + FP + FN); NaN for a class never seen nor predicted.

    Example:
        >>> iou_from_confusion(torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 1]])).tolist()
        [1.0, 0.5, 0.5]
    """
    tp, fp, fn = _tp_fp_fn(cm)
    return tp / (tp + fp + fn)  # 0/0 = NaN marks an absent class


def dice_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Per-class Dice (F1) = 2TP / (2TP + FP + FN); NaN for an absent class.

    Example:
        >>> dice_from_confusion(torch.tensor([[1, 0], [1, 2]])).tolist()
        [0.6666666666666666, 0.8]
    """
    tp, fp, fn = _tp_fp_fn(cm)
    return 2 * tp / (2 * tp + fp + fn)


def pixel_accuracy_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """Correct pixels / valid pixels; NaN when there are no valid pixels.

    Example:
        >>> pixel_accuracy_from_confusion(torch.tensor([[1, 0], [1, 2]])).item()
        0.75
    """
    cm = cm.double()
    return cm.diagonal().sum() / cm.sum()


def _tp_fp_fn(cm: torch.Tensor):
    cm = cm.double()
    tp = cm.diagonal()
    return tp, cm.sum(dim=0) - tp, cm.sum(dim=1) - tp  # column sums: predicted; rows: true


class ConfusionMetric:
    """Base of the stateful metrics: holds one summed confusion matrix (C, C).

    Subclasses say how to turn the matrix into a score in ``compute``.

    Args:
        num_classes: C >= 2 (2 in binary mode).
        mode: ``"multiclass"`` (argmax over scores) or ``"binary"`` (sigmoid > threshold).
        ignore_index: target value whose pixels are skipped (default None).
        include_background: keep class 0 in the mean (default True).
        per_class: ``compute`` returns one value per class instead of the mean.
        threshold: binary mode probability threshold (default 0.5).
    """

    name = "metric"
    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        mode: str = "multiclass",
        ignore_index: int | None = None,
        include_background: bool = True,
        per_class: bool = False,
        threshold: float = 0.5,
    ) -> None:
        _check_mode(mode, num_classes)
        self.num_classes, self.mode, self.ignore_index = num_classes, mode, ignore_index
        self.include_background, self.per_class, self.threshold = (
            include_background,
            per_class,
            threshold,
        )
        self.confmat: torch.Tensor | None = None

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch to the matrix (kept on the input's device; no host sync)."""
        cm = confusion_matrix(
            preds, target, self.num_classes, self.ignore_index, self.mode, self.threshold
        )
        if self.confmat is None:
            self.confmat = cm
        else:
            self.confmat += cm

    def reset(self) -> None:
        """Forget every batch seen (call at the start of each epoch)."""
        self.confmat = None

    def sync(self, all_reduce_sum: Callable[[torch.Tensor], None]) -> None:
        """Sum the matrix across processes (data parallel); ``all_reduce_sum`` is in place."""
        if self.confmat is None:
            self.confmat = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        all_reduce_sum(self.confmat)

    def _matrix(self) -> torch.Tensor:
        if self.confmat is None:
            return torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
        return self.confmat

    def _reduce(self, per_class: torch.Tensor) -> torch.Tensor:
        if self.mode == "binary":
            return per_class[1]  # foreground score, as the binary task asks
        if not self.include_background:
            per_class = per_class[1:]
        return per_class if self.per_class else per_class.nanmean()

    def compute(self) -> torch.Tensor:
        raise NotImplementedError

    def results(self) -> dict[str, float]:
        """Plain floats for logs: ``{name: mean}`` plus ``{name}_{k}`` per class if asked.

        This is the host sync point: call it once per epoch, not per batch.
        """
        return self._log_values(self.name, self.compute())

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

    def compute(self) -> torch.Tensor:
        return pixel_accuracy_from_confusion(self._matrix())


class MeanIoU(ConfusionMetric):
    """Dataset-level IoU per class, averaged over classes that occur (NaN ones are skipped).

    Example:
        >>> m = MeanIoU(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> round(m.compute().item(), 4)
        0.6667
    """

    name = "mean_iou"

    def compute(self) -> torch.Tensor:
        return self._reduce(iou_from_confusion(self._matrix()))


class DiceCoefficient(ConfusionMetric):
    """Dataset-level Dice per class, averaged over classes that occur.

    Example:
        >>> m = DiceCoefficient(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> round(m.compute().item(), 4)
        0.7778
    """

    name = "dice"

    def compute(self) -> torch.Tensor:
        return self._reduce(dice_from_confusion(self._matrix()))


class SegmentationMetrics(ConfusionMetric):
    """Pixel accuracy, mean IoU and Dice from one shared matrix (one ``bincount`` per batch).

    Example:
        >>> m = SegmentationMetrics(num_classes=3)
        >>> m.update(torch.tensor([[[0, 1], [2, 2]]]), torch.tensor([[[0, 1], [1, 2]]]))
        >>> {k: round(v, 4) for k, v in m.results().items()}
        {'pixel_accuracy': 0.75, 'mean_iou': 0.6667, 'dice': 0.7778}
    """

    name = "segmentation"

    def compute(self) -> dict[str, torch.Tensor]:
        cm = self._matrix()
        return {
            "pixel_accuracy": pixel_accuracy_from_confusion(cm),
            "mean_iou": self._reduce(iou_from_confusion(cm)),
            "dice": self._reduce(dice_from_confusion(cm)),
        }

    def results(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, value in self.compute().items():
            out.update(self._log_values(name, value))
        return out

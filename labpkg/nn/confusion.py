"""The confusion matrix and the three segmentation scores computed from it (pure functions).

A C×C matrix of pixel counts (rows: true class, columns: predicted class) holds everything
pixel accuracy, IoU and Dice need:

- IoU = TP / (TP + FP + FN), Dice = 2TP / (2TP + FP + FN), accuracy = ΣTP / valid pixels;
- a class with TP + FP + FN = 0 (absent and never predicted) is NaN, left out of means.

``labpkg.nn.metrics`` sums these matrices over an epoch (dataset-level scores).
"""

from __future__ import annotations

import torch

from labpkg.core.checks import check_labels
from labpkg.nn.bins import add_counts, count_bins
from labpkg.nn.labels import to_labels

__all__ = [
    "confusion_matrix",
    "pair_counts",
    "host_reads_are_free",
    "check_label_ranges",
    "iou_from_confusion",
    "dice_from_confusion",
    "pixel_accuracy_from_confusion",
]


def confusion_matrix(
    preds: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    mode: str = "multiclass",
    threshold: float = 0.5,
    validate_args: bool = True,
) -> torch.Tensor:
    """Count pixels by (true class, predicted class).

    Args:
        preds: class scores (N, C, H, W), argmaxed over dim 1, or labels (N, H, W). In binary
            mode: logits (N, H, W) or (N, 1, H, W), thresholded after a sigmoid, or 0/1 labels.
        target: integer labels (N, H, W) (binary mode also accepts (N, 1, H, W)).
        num_classes: C >= 2 (2 in binary mode).
        ignore_index: target value whose pixels are skipped (default None).
        mode: ``"multiclass"`` (default) or ``"binary"``.
        threshold: binary mode probability threshold (default 0.5).
        validate_args: raise on a label outside [0, C) that is not ``ignore_index`` (a host
            read). With False such pixels are left out without a word; the stateful metrics
            count them instead and raise when the score is computed.

    Returns:
        int64 tensor (C, C) on the input's device; ``cm[t, p]`` counts pixels of class t
        predicted as p.

    Example:
        >>> t = torch.tensor([[[0, 1], [1, 2]]])
        >>> p = torch.tensor([[[0, 1], [2, 2]]])
        >>> confusion_matrix(p, t, num_classes=3).tolist()
        [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    labels, target, _ = to_labels(preds, target, num_classes, mode, threshold)
    counts = count_pairs(preds, labels, target, num_classes, ignore_index, validate_args)
    return counts[:-1].reshape(num_classes, num_classes)


def count_pairs(
    preds: torch.Tensor,
    labels: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None,
    validate_args: bool,
) -> torch.Tensor:
    """``pair_counts`` of one batch, after the range check ``validate_args`` asks for.

    On a CPU without ``ignore_index`` the count itself tells whether every label lies in
    [0, C) (its last bin), so the check reads the labels again only to name a stray one;
    elsewhere it checks first (a host read). Returns (C·C + 1,) int64.
    """
    scores = preds.is_floating_point()  # argmaxed or thresholded: labels in [0, C)
    if validate_args and (ignore_index is not None or not host_reads_are_free(labels.device)):
        check_label_ranges(preds, labels, target, num_classes, ignore_index)
        return pair_counts(labels, target, num_classes, ignore_index, True, scores)
    counts = pair_counts(labels, target, num_classes, ignore_index, False, scores)
    if validate_args and counts[-1].item() > 0:  # a free read on a CPU: name the labels
        check_label_ranges(preds, labels, target, num_classes, ignore_index)
    return counts


def pair_counts(
    labels: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None,
    checked: bool = False,
    labels_in_range: bool = False,
) -> torch.Tensor:
    """Pixels per (true, predicted) pair, flat: (C·C + 1,) int64. No host sync on a GPU.

    Bin ``t·C + p`` counts pixels of true class t predicted as p; the last bin counts pixels
    whose true or predicted label lies outside [0, C) (other than ``ignore_index``), which
    would otherwise land silently in another class's bin (``checked=True``: the labels were
    just checked, so that bin stays 0 and the range test is skipped). ``labels_in_range``:
    the predicted labels come from scores (argmax, threshold), so only the target needs the
    range test, which then costs four passes instead of nine. On a CPU, where reading a
    value back is free, the usual case (no ignore_index, every label in range) takes a fast
    pass over each label tensor beyond the bare count (``_count_if_in_range``). The counts go
    into bins of a fixed size (``count_bins``), never through ``bincount``, which reads the
    largest index back to the host to size its output (a GPU sync).
    """
    c = num_classes
    if not checked and ignore_index is None and host_reads_are_free(labels.device):
        counts = _count_if_in_range(labels, target, c, labels_in_range)
        if counts is not None:
            return counts
    if not checked and labels_in_range:
        # with p in [0, C) and t clamped to [-1, C] (t·C of a huge t would wrap around int64),
        # t·C + p lies in [0, C·C) exactly when t is in [0, C): a clamp sends the rest to -1 or
        # C·C, and a shift by one makes -1 a bin too (bin 0, folded below)
        index = torch.add(labels, target.clamp(-1, c), alpha=c)  # (N, H, W)
        index = index.clamp_(-1, c * c).add_(1)  # values in [0, C·C + 1]
    else:
        index = torch.add(labels, target, alpha=c)  # t·C + p in one pass: (N, H, W)
    if not checked and not labels_in_range:  # route every pixel through the range test
        in_range = (target >= 0) & (target < c) & (labels >= 0) & (labels < c)
        index = torch.where(in_range, index, c * c)
    if ignore_index is not None:
        index = torch.where(target == ignore_index, c * c + 2, index)  # a bin dropped below
    index = index.reshape(-1)  # every value in [0, C·C + 2] now
    counts = count_bins(index, c * c + 3)
    if not checked and labels_in_range:  # bins 0 and C·C + 1 are both outside [0, C)
        return torch.cat([counts[1 : c * c + 1], counts[:1] + counts[c * c + 1 : c * c + 2]])
    return counts[: c * c + 1]


def host_reads_are_free(device: torch.device) -> bool:
    """Is reading a value back cheap here? On a CPU, yes; on a GPU each read waits for every
    queued kernel (a sync), so the per-batch path never reads there."""
    return device.type == "cpu"


def _count_if_in_range(
    labels: torch.Tensor, target: torch.Tensor, c: int, labels_in_range: bool
) -> torch.Tensor | None:
    """On a CPU: the flat counts (C·C + 1,) if every label lies in [0, C), else None.

    Each int64 label is read as two 32-bit halves, (N, H, W) as (2·N·H·W,) int32, because
    int32 operations run several times faster here than int64 ones. A check lets through
    halves in [0, C) only (``_halves_in_range``; the predicted labels skip it when they come
    from scores). The index is then t·C + p taken half by half, an int32 add: the low halves
    give t·C + p itself, the high halves give 0 when both labels lie in [0, C) and a positive
    number when either is 2³² or more, which puts the int64 index at 2³² or more, and the
    count refuses it. So any label outside [0, C) returns None, and the caller routes every
    pixel through the exact range test. The pixels go ``_CHUNK`` at a time, so that the add
    and the count read labels the check has just brought into the cache.
    """
    if c > _MAX_FAST_CLASSES:
        return None
    counts = torch.zeros(c * c + 1, dtype=torch.long)  # the last bin: pixels outside, none
    bins = counts[:-1]
    for t, p in _chunks(_halves(target), _halves(labels)):
        if not _halves_in_range(t, c) or not (labels_in_range or _halves_in_range(p, c)):
            return None
        try:  # (2n,) int32 halves -> (n,) int64 indices, t·C + p when both are in [0, C)
            add_counts(bins, torch.add(p, t, alpha=c).view(torch.long))
        except IndexError:  # a label of 2³² or more: an index of 2³² or more
            return None
    return counts


def _halves(labels: torch.Tensor) -> torch.Tensor:
    """int64 labels (N, H, W) as their 32-bit halves (2·N·H·W,) int32 (a copy if strided)."""
    return labels.reshape(-1).view(torch.int32)


def _chunks(target: torch.Tensor, labels: torch.Tensor):
    """``(target, labels)`` halves in pieces of ``_CHUNK`` pixels (the whole when smaller)."""
    if target.numel() <= 2 * _CHUNK:
        return ((target, labels),)
    return zip(target.split(2 * _CHUNK), labels.split(2 * _CHUNK), strict=True)


# pixels per step of the fast count: the add and the count read the two chunks of labels
# (2 × 256 KiB) soon after the check, from a core's cache; 64 Ki pixels measured slower
_CHUNK = 32_768


def _halves_in_range(halves: torch.Tensor, c: int) -> bool:
    """Does every 32-bit half lie in [0, C)? One min/max pass, int32.

    Both halves in [0, C) means the int64 label is in [0, C) (upper half 0) or at least 2³²
    (upper half ≥ 1), never negative.
    """
    if halves.numel() == 0:
        return True
    low, high = torch.aminmax(halves)
    return low.item() >= 0 and high.item() < c


# t·C + p of two halves in [0, C) is at most C² - 1, which must stay below 2³¹ (no int32
# wrap-around): C ≤ 46,340
_MAX_FAST_CLASSES = 46_000


def check_label_ranges(
    preds: torch.Tensor,
    labels: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None,
) -> None:
    """Raise now if a label is outside [0, C) and not ``ignore_index`` (a host read each)."""
    check_labels(target, num_classes, ignore_index)
    if not preds.is_floating_point():  # scores give labels in range by construction
        check_labels(labels, num_classes, None, name="preds")


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

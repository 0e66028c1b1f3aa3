"""Argument checks that turn bad input into a clear error naming the argument and the fix."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Collection, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

__all__ = [
    "check_class_target",
    "check_labels",
    "labels_outside_message",
    "check_trainer_args",
    "check_fit_args",
    "check_eval_loader",
    "check_callbacks",
    "check_loss_value",
    "batch_pair",
    "as_inputs",
    "as_target",
    "as_int",
    "as_max_batches",
    "check_lr",
    "MODES",
    "check_mode",
    "FirstBatchChecks",
]

#: the members of ``labpkg.nn.metrics.Metric`` that every ``fit`` calls (the others are asked
#: for where they are used: a mid-epoch checkpoint, ``mode="auto"``, a file name template)
METRIC_METHODS = ("reset", "update", "results", "sync")

#: The ways scores become labels, softmax over the C classes ("multiclass"), a sigmoid of
#: one channel ("binary"), or a sigmoid per channel, each its own yes/no ("multilabel").
MODES = ("multiclass", "binary", "multilabel")


def check_mode(mode: str, multilabel: bool = True) -> None:
    """Raise unless ``mode`` is one of ``MODES`` (the metrics, one label per pixel, take the
    first two only: ``multilabel=False``)."""
    allowed = MODES if multilabel else MODES[:2]
    if mode not in allowed:
        raise ValueError(f"mode must be one of {allowed}, got {mode!r}")


def check_class_target(target: torch.Tensor) -> None:
    """A class-id target: integers (not floats or bools), shaped (N, H, W), not (N, 1, H, W)."""
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class ids (int64), got dtype {target.dtype}")
    if target.ndim == 4 and target.shape[1] == 1:
        raise ValueError("target of shape (N, 1, H, W): squeeze it to (N, H, W) (mask[:, 0])")


def check_labels(
    target: torch.Tensor, num_classes: int, ignore_index: int | None, name: str = "target"
) -> None:
    """Raise if a label is outside [0, C) and is not ``ignore_index`` (one reduction, one read)."""
    if target.numel() == 0:
        return
    valid = target if ignore_index is None else torch.where(target == ignore_index, 0, target)
    low, high = torch.aminmax(valid)
    if bool((low < 0) | (high >= num_classes)):  # one host read for both bounds
        raise ValueError(labels_outside_message(name, num_classes, valid))


def labels_outside_message(
    name: str, num_classes: int, labels: torch.Tensor | None = None, count: int | None = None
) -> str:
    """Why labels outside [0, C) were found, and the fix that fits the values seen.

    Masks saved as black and white images hold 0 and 255: 255 is the foreground, so the fix
    is to map it to class 1; ``ignore_index=255`` would skip every foreground pixel. Other
    values outside the range are a wrong ``num_classes``, or a "void" label to skip.

    Args:
        name: what holds the labels, e.g. ``"target"``.
        num_classes: C.
        labels: the labels (the error path reads them back, once); None when only ``count``
            is known.
        count: how many pixels were outside, when ``labels`` is None.

    Returns:
        The message for the error.
    """
    fix = (
        "fix num_classes, or pass ignore_index=<value> to the loss and the metrics if that "
        "value marks pixels to skip; masks that store grey levels need mapping to classes "
        "instead (e.g. SegmentationFolder(..., mask_values={0: 0, 255: 1}))"
    )
    if labels is None:
        return f"{count} pixels had a {name} label outside [0, {num_classes}); {fix}"
    values = torch.unique(labels).tolist()  # sorted; the error path, so a read is fine
    outside = [v for v in values if not 0 <= v < num_classes]
    seen = f"{name} holds labels outside [0, {num_classes}): {_listed(outside)}"
    if set(values) == {0, 255}:
        return (
            f"{seen}; with only 0 and 255 these look like black-and-white masks, where 255 is "
            "the foreground: map 255 to class 1 (SegmentationFolder(..., mask_values={0: 0, "
            "255: 1}), or target // 255). ignore_index=255 would skip every foreground pixel"
        )
    return f"{seen} (all values: {_listed(values)}); {fix}"


def _listed(values: list[int], most: int = 8) -> str:
    """``[0, 3, 7]``, or the first ``most`` and how many there are."""
    if len(values) <= most:
        return str(values)
    return f"[{', '.join(map(str, values[:most]))}, ... ({len(values)} values)]"


def as_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as a Python int (NumPy integers too) of at least ``minimum``, or a ValueError."""
    try:
        number = operator.index(value)  # int, np.int64, ...; not float, not bool
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def check_lr(lr: Any, name: str = "lr") -> float:
    """``lr`` as a float: a finite number >= 0, as ``torch.optim`` takes it (0 is allowed: a
    schedule may start or end there), with NaN and inf refused as well.

    Example:
        >>> check_lr(0.0)
        0.0
        >>> check_lr(-0.1)
        Traceback (most recent call last):
        ...
        ValueError: lr must be a finite number >= 0, got -0.1
    """
    number = isinstance(lr, numbers.Real) and not isinstance(lr, bool)
    if not (number and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {lr!r}")
    return float(lr)  # a NumPy number would not load from a weights-only checkpoint


def as_max_batches(max_batches: Any) -> int | None:
    """``max_batches`` as an int >= 1, or None (all): a pass over no batch has no result."""
    return None if max_batches is None else as_int(max_batches, "max_batches", 1)


def batch_pair(item: Any) -> tuple[Any, Any]:
    """``(inputs, target)`` from one batch, or one clear error for any other shape of batch."""
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, dict):
        what = f"a dict with keys {sorted(item)}"
    elif isinstance(item, (list, tuple)):
        what = f"a {type(item).__name__} of {len(item)} items"
    else:
        what = f"a {type(item).__name__}"
    raise TypeError(
        f"each batch must be a pair (inputs, target): images (B, C, H, W) and masks (B, H, W); "
        f"the loader gave {what}. Make the dataset return (image, mask) (for "
        "SyntheticShapes, leave return_index off), or map its items to such pairs"
    )


def as_inputs(inputs: Any) -> torch.Tensor:
    """Images as floats: float64 (NumPy's default) becomes float32; uint8 is refused."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a tensor (B, C, H, W), got {type(inputs).__name__}")
    if inputs.dtype == torch.float64:
        return inputs.float()  # the weights are float32; the values are unchanged
    if not inputs.is_floating_point():
        raise TypeError(
            f"inputs are {inputs.dtype} images; the model expects floats: for 8-bit images "
            "(0-255, as PIL and NumPy give them) use images.float() / 255"
        )
    return inputs


def as_target(target: Any) -> torch.Tensor:
    """Masks as int64 class ids: any integer or bool dtype is converted; floats are refused."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a tensor (B, H, W), got {type(target).__name__}")
    if target.is_floating_point():
        raise TypeError(
            f"target holds {target.dtype} values; masks must hold integer class ids. If they "
            "are whole numbers, convert with masks.long()"
        )
    return target if target.dtype == torch.int64 else target.long()  # uint8 (PIL), int32, bool


def check_trainer_args(
    model, optimizer, loss, metrics: Sequence, grad_clip_norm, accumulate_grad_batches
) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            "optimizer must be a torch.optim.Optimizer (e.g. labpkg.get_optimizer('adam', "
            f"model.parameters())), got {type(optimizer).__name__}"
        )
    _check_optimizer_of(model, optimizer)
    if isinstance(loss, type):
        raise TypeError(f"loss must be an instance: pass {loss.__name__}(), not {loss.__name__}")
    if not callable(loss):
        raise TypeError(f"loss must be callable as loss(logits, target), got {loss!r}")
    for metric in metrics:
        missing = [m for m in METRIC_METHODS if not callable(getattr(metric, m, None))]
        if missing:
            raise TypeError(
                f"metrics must have labpkg.nn.metrics.Metric's {', '.join(METRIC_METHODS)}; "
                f"{type(metric).__name__} lacks {', '.join(missing)}"
            )
    if grad_clip_norm is not None and not (math.isfinite(grad_clip_norm) and grad_clip_norm > 0):
        raise ValueError(f"grad_clip_norm must be > 0 or None, got {grad_clip_norm}")
    as_int(accumulate_grad_batches, "accumulate_grad_batches", 1)


def _check_optimizer_of(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    own = {id(p) for p in model.parameters()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params or any(id(p) not in own for p in params):
        raise ValueError(
            "optimizer holds parameters that are not this model's, so training would not "
            "change the model: build it from this model, e.g. "
            "labpkg.get_optimizer('adam', model.parameters())"
        )
    for group in optimizer.param_groups:
        lr = group.get("lr")
        if isinstance(lr, numbers.Real):  # a float, or a NumPy number such as np.float32
            group["lr"] = check_lr(lr, "the optimizer's learning rate")


def check_fit_args(train, epochs, initial_epoch, batches_per_epoch, validation_freq, verbose):
    """Check ``fit``'s arguments; returns them as Python ints (NumPy integers accepted)."""
    _check_loader(train, "train")
    epochs = as_int(epochs, "epochs", 0)
    initial_epoch = as_int(initial_epoch, "initial_epoch", 0)
    if initial_epoch > epochs:
        raise ValueError(f"initial_epoch must be in [0, epochs={epochs}], got {initial_epoch}")
    length = _length(train)
    if batches_per_epoch is not None:
        batches_per_epoch = as_int(batches_per_epoch, "batches_per_epoch", 1)
        if length is not None and batches_per_epoch > length:
            raise ValueError(
                f"batches_per_epoch must be between 1 and len(train)={length}, "
                f"got {batches_per_epoch}"
            )
    elif length is None:
        raise ValueError(
            "train's dataset has no length (an IterableDataset): pass batches_per_epoch"
        )
    if length == 0:
        raise ValueError(
            "train yields no batches: the dataset is empty, or drop_last=True with fewer "
            "samples than batch_size"
        )
    validation_freq = check_validation_freq(validation_freq)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose}")
    return epochs, initial_epoch, batches_per_epoch, validation_freq


def check_validation_freq(value: Any) -> int | frozenset[int]:
    """``validation_freq`` as Keras takes it: every k-th epoch (an int >= 1), or the 1-based
    epochs after which to validate (a collection, e.g. ``[4, 5, 6]``).

    Example:
        >>> check_validation_freq(2), sorted(check_validation_freq((4, 6)))
        (2, [4, 6])
    """
    if isinstance(value, Collection) and not isinstance(value, str):
        epochs = frozenset(as_int(e, "each epoch in validation_freq", 1) for e in value)
        if not epochs:
            raise ValueError("validation_freq is empty: leave out validation_data instead")
        return epochs
    return as_int(value, "validation_freq", 1)


def validates_after(epoch: int, validation_freq: int | frozenset[int]) -> bool:
    """Is the 0-based ``epoch`` one that ``validation_freq`` (checked) validates after?"""
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq


def check_callbacks(callbacks) -> list:
    if callbacks is None:
        return []
    if hasattr(callbacks, "on_epoch_end"):
        raise TypeError(
            f"callbacks must be a list: pass callbacks=[{type(callbacks).__name__}(...)]"
        )
    return list(callbacks)


def check_eval_loader(loader, name: str) -> None:
    """A DataLoader that yields at least one batch (an empty one would report NaN)."""
    _check_loader(loader, name)
    if _length(loader) == 0:
        raise ValueError(f"{name} yields no batches: its dataset is empty")


def _check_loader(loader, name: str) -> None:
    if not isinstance(loader, DataLoader):
        raise TypeError(
            f"{name} must be a torch DataLoader, got {type(loader).__name__}; wrap your data: "
            "DataLoader(dataset, batch_size=32), or labpkg.make_loaders(train, val)"
        )


def _length(loader: DataLoader) -> int | None:
    if isinstance(loader.dataset, IterableDataset):
        return None
    return len(loader)


class FirstBatchChecks:
    """Input checks on the first mini-batch of every pass, and off for the rest.

    Losses and metrics with ``validate_args`` check label values, which needs a host read (on
    a GPU, a wait for the device). The Trainer has them check the first mini-batch of each
    epoch and each evaluation, then turns the checks off, so the loop never waits; ``restore``
    turns them back on. Objects whose checks the user turned off are left alone.
    """

    def __init__(self, *objects: Any) -> None:
        self.objects = [o for o in objects if getattr(o, "validate_args", False) is True]

    def set(self, on: bool) -> None:
        for obj in self.objects:
            obj.validate_args = on

    def restore(self) -> None:
        self.set(True)


def check_loss_value(loss: Any) -> None:
    """Raise unless the loss gave one number (a 0-d tensor); checks the shape, no host read."""
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise ValueError(
            "the loss must return one number per mini-batch, got "
            f"{getattr(loss, 'shape', type(loss).__name__)}: use reduction='mean'"
        )

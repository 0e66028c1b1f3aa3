"""Argument checks that turn bad input into a clear error naming the argument and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "check_class_target",
    "check_labels",
    "check_trainer_args",
    "check_fit_args",
    "FirstBatchChecks",
]

METRIC_METHODS = ("reset", "update", "results", "sync")


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
        raise ValueError(
            f"{name} holds labels outside [0, {num_classes}) (min {int(low)}, max {int(high)}); "
            "fix num_classes, or pass ignore_index for 'void' pixels such as 255"
        )


def check_trainer_args(
    model, optimizer, loss, metrics, grad_clip_norm, accumulate_grad_batches
) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            "optimizer must be a torch.optim.Optimizer (e.g. labpkg.get_optimizer('adam', "
            f"model.parameters())), got {type(optimizer).__name__}"
        )
    if not callable(loss):
        raise TypeError(f"loss must be callable as loss(logits, target), got {loss!r}")
    for metric in metrics:
        missing = [m for m in METRIC_METHODS if not callable(getattr(metric, m, None))]
        if missing:
            raise TypeError(
                f"metrics must follow labpkg.metrics.Metric ({', '.join(METRIC_METHODS)}); "
                f"{type(metric).__name__} lacks {', '.join(missing)}"
            )
    if grad_clip_norm is not None and not grad_clip_norm > 0:
        raise ValueError(f"grad_clip_norm must be > 0 or None, got {grad_clip_norm}")
    if not isinstance(accumulate_grad_batches, int) or accumulate_grad_batches < 1:
        raise ValueError(
            f"accumulate_grad_batches must be an int >= 1, got {accumulate_grad_batches}"
        )


def check_fit_args(train, epochs, initial_epoch, steps_per_epoch, validation_freq, verbose) -> None:
    if not isinstance(train, Iterable) or not hasattr(train, "__len__"):
        raise TypeError("train must be a DataLoader (iterable with len) yielding (inputs, target)")
    if len(train) == 0:
        raise ValueError(
            "train yields no batches: the dataset is empty, or drop_last=True with fewer "
            "samples than batch_size"
        )
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    if not 0 <= initial_epoch <= epochs:
        raise ValueError(f"initial_epoch must be in [0, epochs={epochs}], got {initial_epoch}")
    if steps_per_epoch is not None and not 1 <= steps_per_epoch <= len(train):
        raise ValueError(
            f"steps_per_epoch must be between 1 and len(train)={len(train)}, got {steps_per_epoch}"
        )
    if validation_freq < 1:
        raise ValueError(f"validation_freq must be >= 1, got {validation_freq}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose}")


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

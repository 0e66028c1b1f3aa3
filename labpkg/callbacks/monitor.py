"""What "better" means for a monitored log value (shared by every callback with a ``monitor``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from labpkg.nn.metrics import declared_log_keys

__all__ = [
    "resolve_mode",
    "MonitorMode",
    "is_improvement",
    "MissingKeyWarner",
    "DivergenceCheck",
]


def resolve_mode(monitor: str, mode: str, metrics: Sequence | None = None) -> str:
    """``"min"`` or ``"max"`` for ``monitor``; ``"auto"`` decides from the name and the metrics.

    ``*loss`` is minimised; a key that one of ``metrics`` logs (its ``log_keys()``) goes the
    way the metric's ``higher_is_better`` says; any other name raises instead of silently
    minimising it. Without ``metrics`` (a callback being built, before ``fit`` gives it the
    trainer) a name that is not a loss stays ``"auto"``, to be decided then.

    Example:
        >>> from labpkg.nn.metrics import MeanIoU
        >>> resolve_mode("val_mean_iou", "auto", [MeanIoU(3)]), resolve_mode("val_loss", "auto")
        ('max', 'min')
    """
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    name = monitor.removeprefix("val_")
    if name.endswith("loss"):
        return "min"
    if metrics is None:
        return "auto"
    logged = []
    for metric in metrics:
        keys = declared_log_keys(metric) or []
        if name in keys:
            return "max" if metric.higher_is_better else "min"
        logged += keys
    raise ValueError(
        f"mode='auto' cannot tell whether {monitor!r} should go up or down: it is not a loss, "
        f"and no metric with log_keys() logs it (they log {logged}); pass mode='min' or "
        "mode='max'"
    )


class MonitorMode:
    """``self.mode`` resolved once ``fit`` hands the callback its trainer (and so the metrics):
    a base for callbacks with a ``monitor`` and a ``mode``, listed before ``Callback``."""

    monitor: str
    mode: str

    def set_trainer(self, trainer: Any) -> None:
        super().set_trainer(trainer)  # type: ignore[misc]
        if self.mode == "auto":  # before the first mini-batch: a bad name fails now
            self.mode = resolve_mode(self.monitor, "auto", trainer.metrics)


def is_improvement(current: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Strictly better than ``best`` by more than ``|min_delta|``; a tie is no improvement.

    A NaN or infinite value never counts as an improvement (Keras would let a first NaN
    become the best, and nothing could beat it afterwards).

    Example:
        >>> is_improvement(0.9, 1.0, "min"), is_improvement(1.0, 1.0, "min")
        (True, False)
    """
    if not math.isfinite(current):
        return False
    if best is None:
        return True
    delta = abs(min_delta)
    return current < best - delta if mode == "min" else current > best + delta


class MissingKeyWarner:
    """Warn once per run when the monitored key is not in the logs, listing the keys that are."""

    def __init__(self, owner: str, monitor: str) -> None:
        self.owner, self.monitor, self.warned = owner, monitor, False

    def __call__(self, logs: dict) -> None:
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"{self.owner}: monitored key {self.monitor!r} is not in the logs; available "
                f"keys: {sorted(logs)}. Is validation_data missing, or the name misspelt?",
                stacklevel=3,
            )


class DivergenceCheck:
    """Answers whether an epoch diverged (non-finite loss or weights), and says so once per run.

    Once the weights hold NaN, every pixel is argmaxed to class 0: an all-background
    prediction can then score *higher* than the healthy model on accuracy or mean IoU. So an
    epoch whose loss or weights are not finite never counts as an improvement.
    """

    def __init__(self, owner: str) -> None:
        self.owner, self.warned = owner, False

    def diverged(self, trainer, epoch: int) -> bool:
        """True if the epoch in ``trainer`` diverged; the first time, also a warning."""
        if not trainer.state.diverged:
            return False
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"{self.owner}: epoch {epoch + 1} diverged (a NaN or infinite loss or weight); "
                "it and later such epochs are not eligible as best",
                stacklevel=3,
            )
        return True

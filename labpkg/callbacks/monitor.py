"""What "better" means for a monitored log value (shared by every callback with a ``monitor``)."""

from __future__ import annotations

import math
import warnings

from labpkg.metrics import HIGHER_IS_BETTER

__all__ = ["resolve_mode", "is_improvement", "MissingKeyWarner", "DivergedWarner"]


def resolve_mode(monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"`` for ``monitor``; ``"auto"`` decides from the name.

    ``*loss`` is minimised, metrics that declare higher-is-better (mean IoU, Dice, accuracy)
    are maximised, and any other name raises instead of silently minimising it.

    Example:
        >>> resolve_mode("val_mean_iou", "auto"), resolve_mode("val_loss", "auto")
        ('max', 'min')
    """
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    name = monitor.removeprefix("val_")
    if name.endswith("loss"):
        return "min"
    if name in HIGHER_IS_BETTER or name.rsplit("_", 1)[0] in HIGHER_IS_BETTER:
        return "max"
    raise ValueError(
        f"mode='auto' cannot tell whether {monitor!r} should go up or down; "
        "pass mode='min' or mode='max'"
    )


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


class DivergedWarner:
    """Says once per run that diverged epochs (non-finite loss or weights) cannot be best.

    Once the weights hold NaN, every pixel is argmaxed to class 0: an all-background
    prediction can then score *higher* than the healthy model on accuracy or mean IoU. So an
    epoch whose loss or weights are not finite never counts as an improvement.
    """

    def __init__(self, owner: str) -> None:
        self.owner, self.warned = owner, False

    def __call__(self, trainer, epoch: int) -> bool:
        """True (and a warning the first time) if the epoch in ``trainer`` diverged."""
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

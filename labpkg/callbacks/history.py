"""``History``: every epoch's logs, kept for tables and plots."""

from __future__ import annotations

import math
from typing import Any

from labpkg.callbacks.base import Callback

__all__ = ["History"]


class History(Callback):
    """Records the epoch logs; the Trainer adds one to every ``fit`` and returns it.

    Attributes:
        epoch (list): the 0-based epochs recorded.
        history (dict): ``{key: [value per epoch]}`` (NaN where an epoch lacked the key, e.g. a
            validation metric on an epoch without validation).

    A run resumed from a checkpoint starts a new History holding the epochs it trains (as Keras
    does with ``initial_epoch``); the earlier epochs are in the interrupted run's History.

    Example:
        >>> h = History()
        >>> h.on_epoch_end(0, {"loss": 0.9}); h.on_epoch_end(1, {"loss": 0.5})
        >>> h.history["loss"], h.epoch
        ([0.9, 0.5], [0, 1])
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        for key in logs.keys() - self.history.keys():  # a key first seen now: pad the past
            self.history[key] = [math.nan] * len(self.epoch)
        self.epoch.append(epoch)
        for key, values in self.history.items():
            values.append(float(logs.get(key, math.nan)))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per epoch, ``epoch`` 1-based as a reader counts."""
        return [
            {"epoch": e + 1, **{k: v[i] for k, v in self.history.items()}}
            for i, e in enumerate(self.epoch)
        ]

    def table(self, digits: int = 4) -> str:
        """A plain-text table, one row per epoch (no pandas needed)."""
        keys = ["epoch", *sorted(self.history)]
        lines = ["  ".join(f"{k:>12}" for k in keys)]
        for row in self.rows():
            cells = [f"{row['epoch']:>12d}"] + [f"{row[k]:>12.{digits}f}" for k in keys[1:]]
            lines.append("  ".join(cells))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"

    def plot(self, keys: list[str] | None = None):
        """Curves of ``keys`` (default: every loss and metric) against the epoch.

        Returns:
            A matplotlib ``Figure``.
        """
        from labpkg import viz  # matplotlib loads only when a plot is asked for

        return viz.plot_history(self, keys)

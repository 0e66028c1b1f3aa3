"""``History``: every epoch's logs, kept for tables and plots."""

from __future__ import annotations

import math
from typing import Any

from labpkg.callbacks.base import Callback

__all__ = ["BatchHistory", "History"]


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


class BatchHistory(Callback):
    """Records every training mini-batch: the running loss, the learning rate and the update
    count, for plots inside an epoch and of learning-rate schedules.

    The Trainer's per-batch logs hold the *running* mean of the epoch so far (as Keras prints
    it), weighted by batch size. ``batch_losses`` takes each mini-batch's own loss back out of
    those means. Reading the loss every mini-batch makes the device wait (a host sync), so
    use this to look at a run, not in every run.

    Attributes:
        epoch, running, samples, lr, updated (list): per mini-batch: its 0-based epoch,
            the running mean after it, the samples that mean covers, the learning rate it
            was trained with, and whether an optimizer update ended with it.

    Example:
        >>> h = BatchHistory()
        >>> h.epoch, h.running, h.samples = [0, 0], [1.0, 0.75], [2, 4]
        >>> h.batch_losses()  # 1.0 on 2 samples, then a mean of 0.75 over 4: the second is 0.5
        [1.0, 0.5]
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.running: list[float] = []
        self.samples: list[int] = []
        self.lr: list[float] = []
        self.updated: list[bool] = []
        self._lr, self._step = 0.0, 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # read before the mini-batch: a per-update scheduler changes it at the batch's end
        self._lr = float(self.trainer.optimizer.param_groups[0]["lr"])
        self._step = self.trainer.state.global_step

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.epoch.append(self.trainer.state.epoch)
        self.running.append(float((logs or {})["loss"]))  # the host sync noted above
        self.samples.append(self.trainer.running_loss.count)
        self.lr.append(self._lr)
        self.updated.append(self.trainer.state.global_step > self._step)

    def update_lrs(self) -> list[float]:
        """The learning rate of each optimizer update (accumulated mini-batches count once)."""
        return [lr for lr, updated in zip(self.lr, self.updated, strict=True) if updated]

    def batch_losses(self) -> list[float]:
        """Each mini-batch's own loss: (m_k × c_k − m_(k−1) × c_(k−1)) / (c_k − c_(k−1)), with
        m the running mean and c its sample count (both start from zero each epoch)."""
        losses, previous = [], (0.0, 0)
        for i, (mean, count) in enumerate(zip(self.running, self.samples, strict=True)):
            if i > 0 and self.epoch[i] != self.epoch[i - 1]:
                previous = (0.0, 0)  # a new epoch: the running mean starts again
            total = mean * count - previous[0] * previous[1]
            losses.append(total / (count - previous[1]))
            previous = (mean, count)
        return losses

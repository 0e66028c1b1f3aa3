"""``History``: every epoch's logs, kept for tables and plots; and finer records of a run."""

from __future__ import annotations

import math
from typing import Any

from labpkg.callbacks.base import Callback

__all__ = ["BatchHistory", "History", "HookRecorder"]


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

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

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
        from labpkg.figures import viz  # matplotlib loads only when a plot is asked for

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

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.running: list[float] = []
        self.samples: list[int] = []
        self.lr: list[float] = []
        self.updated: list[bool] = []
        self._lr, self._updated = 0.0, False

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # read before the mini-batch: a per-update scheduler changes it after the update
        self._lr = float(self.trainer.optimizer.param_groups[0]["lr"])
        self._updated = False

    def on_update_end(self, step: int, logs: dict | None = None) -> None:
        self._updated = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.epoch.append(self.trainer.state.epoch)
        self.running.append(float((logs or {})["loss"]))  # the host sync noted above
        self.samples.append(self.trainer.running_loss.count)
        self.lr.append(self._lr)
        self.updated.append(self._updated)

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


class HookRecorder(Callback):
    """Records every hook call of a run, in order: the loop's order, read off the real Trainer.

    Attributes:
        calls (list[tuple]): one ``(hook, epoch, batch, global_step)`` per call: the hook's
            name, the epoch in progress (None at train begin and end), the mini-batch index
            the hook was given (None for hooks without one) and the updates made so far.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> import torch
        >>> from labpkg.loop.trainer import Trainer
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), "cross_entropy")
        >>> pairs = TensorDataset(torch.rand(4, 3, 4, 4), torch.randint(0, 2, (4, 4, 4)))
        >>> recorder = HookRecorder()
        >>> _ = trainer.fit(DataLoader(pairs, batch_size=4), 1, callbacks=[recorder], verbose=0)
        >>> [hook for hook, *_ in recorder.calls][:3]
        ['on_train_begin', 'on_epoch_begin', 'on_train_batch_begin']
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int | None, int | None, int]] = []

    def _note(self, hook: str, batch: int | None = None, in_epoch: bool = True) -> None:
        state = self.trainer.state
        epoch = state.epoch if in_epoch else None
        self.calls.append((hook, epoch, batch, state.global_step))

    def on_train_begin(self, logs=None):
        self._note("on_train_begin", in_epoch=False)

    def on_epoch_begin(self, epoch, logs=None):
        self._note("on_epoch_begin")

    def on_train_batch_begin(self, batch, logs=None):
        self._note("on_train_batch_begin", batch)

    def on_after_backward(self, batch, logs=None):
        self._note("on_after_backward", batch)

    def on_before_optimizer_step(self, batch, logs=None):
        self._note("on_before_optimizer_step", batch)

    def on_update_end(self, step, logs=None):
        self._note("on_update_end", self.trainer.state.batch)

    def on_train_batch_end(self, batch, logs=None):
        self._note("on_train_batch_end", batch)

    def on_test_begin(self, logs=None):
        self._note("on_test_begin")

    def on_test_batch_begin(self, batch, logs=None):
        self._note("on_test_batch_begin", batch)

    def on_test_batch_end(self, batch, logs=None):
        self._note("on_test_batch_end", batch)

    def on_test_end(self, logs=None):
        self._note("on_test_end")

    def on_epoch_end(self, epoch, logs=None):
        self._note("on_epoch_end")

    def on_train_end(self, logs=None):
        self._note("on_train_end", in_epoch=False)

    def table(self) -> str:
        """The calls as a plain-text table, epoch and mini-batch 1-based as a reader counts."""
        lines = [f"{'hook':<26}{'epoch':>6}{'batch':>6}{'updates':>9}"]
        for hook, epoch, batch, step in self.calls:
            shown = ["" if n is None else str(n + 1) for n in (epoch, batch)]
            lines.append(f"{hook:<26}{shown[0]:>6}{shown[1]:>6}{step:>9}")
        return "\n".join(lines)

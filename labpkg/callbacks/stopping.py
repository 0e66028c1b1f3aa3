"""Callbacks that end training: ``EarlyStopping`` (Keras semantics) and ``TerminateOnNaN``."""

from __future__ import annotations

import copy
import math
from typing import Any

from labpkg.callbacks.base import Callback
from labpkg.callbacks.monitor import (
    DivergenceCheck,
    MissingKeyWarner,
    MonitorMode,
    is_improvement,
    resolve_mode,
)
from labpkg.core.checks import as_int

__all__ = ["EarlyStopping", "TerminateOnNaN"]


class EarlyStopping(MonitorMode, Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    At each epoch end ``wait`` grows by one; an improvement (strictly better than the best by
    more than ``min_delta``; a tie is no improvement) stores the new best and resets ``wait``
    (if ``baseline`` is also beaten). Training stops once ``wait >= patience``, never on an
    improving epoch and never after the first epoch.

    Where labpkg deliberately differs from Keras 3: a NaN or infinite value never counts as an
    improvement (in Keras a first-epoch NaN becomes the best and nothing beats it).

    Args:
        monitor: log key to watch (default ``"val_loss"``).
        min_delta: smallest change that counts as an improvement (default 0).
        patience: epochs without improvement before stopping (default 0).
        verbose: 1 prints when training stops.
        mode: ``"auto"`` (a loss: min; a metric's key: as its ``higher_is_better`` says, read
            when ``fit`` starts; other names raise), ``"min"`` or ``"max"``.
        baseline: a value to beat: until it is beaten, improvements do not reset ``wait``.
        restore_best_weights: load the best epoch's weights at the end of training, whether
            or not training stopped early (as Keras 3; tf.keras 2 did only after a stop).
        start_from_epoch: epochs (0-based) to let pass before watching (warm-up).
        check_finite: stop at once on a NaN or infinite value.

    Example:
        >>> from types import SimpleNamespace
        >>> from labpkg.loop.state import TrainState
        >>> stop = EarlyStopping(monitor="val_loss", patience=2)  # "auto": a loss is minimised
        >>> stop.set_trainer(SimpleNamespace(state=TrainState()))  # fit() does this
        >>> for epoch, val_loss in enumerate([1.0, 0.9, 0.9, 0.95, 0.8]):
        ...     stop.on_epoch_end(epoch, {"val_loss": val_loss})
        ...     if stop.trainer.state.stop_training:
        ...         break
        >>> stop.best, stop.best_epoch, stop.stopped_epoch  # the tie at epoch 2 did not count
        (0.9, 1, 3)
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        check_finite: bool = False,
    ) -> None:
        super().__init__()
        patience = as_int(patience, "patience", 0)
        start_from_epoch = as_int(start_from_epoch, "start_from_epoch", 0)
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.mode = verbose, resolve_mode(monitor, mode)
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch, self.check_finite = start_from_epoch, check_finite
        self._warn_missing = MissingKeyWarner("EarlyStopping", monitor)
        self._divergence = DivergenceCheck("EarlyStopping")
        self.on_train_begin()

    def default_key(self) -> str:
        return f"EarlyStopping({self.monitor})"

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.best, self.best_epoch = 0, None, None
        self.stopped_epoch: int | None = None
        self.best_weights: dict | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            self._warn_missing(logs)
            return
        current = float(logs[self.monitor])
        if self.check_finite and not math.isfinite(current):
            self._stop(epoch, f"{self.monitor} is {current}")
            return
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        diverged = self._divergence.diverged(self.trainer, epoch)  # NaN weights may score "well"
        if not diverged and is_improvement(current, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                # state_dict() aliases the live tensors: without a deep copy the "snapshot"
                # would keep changing with training
                self.best_weights = copy.deepcopy(self.trainer.model.state_dict())
            if self.baseline is None or is_improvement(
                current, self.baseline, self.mode, self.min_delta
            ):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self._stop(epoch, f"no improvement of {self.monitor} for {self.wait} epochs")

    def _stop(self, epoch: int, reason: str) -> None:
        self.stopped_epoch = epoch
        self.trainer.state.stop_training = True
        if self.verbose:
            print(f"epoch {epoch + 1}: early stopping ({reason})")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait, self.best = state["wait"], state["best"]
        self.best_epoch, self.best_weights = state["best_epoch"], state["best_weights"]


class TerminateOnNaN(Callback):
    """Stop (or raise) as soon as the running training loss is NaN or infinite.

    Args:
        raise_error: raise ``RuntimeError`` instead of stopping quietly (default False).

    Example:
        >>> from types import SimpleNamespace
        >>> from labpkg.loop.state import TrainState
        >>> guard = TerminateOnNaN()
        >>> guard.set_trainer(SimpleNamespace(state=TrainState()))  # fit() does this
        >>> guard.on_train_batch_end(6, {"loss": float("nan")})
        batch 7: loss is nan, terminating training
        >>> guard.trainer.state.stop_training
        True
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):  # float() is a host sync per batch
            return
        message = f"batch {batch + 1}: loss is {float(loss)}, terminating training"
        if self.raise_error:
            raise RuntimeError(message)
        print(message)
        # diverged: no checkpoint of this epoch is written, and it cannot count as best
        self.trainer.state.check_divergence(loss)
        self.trainer.state.stop_training = True

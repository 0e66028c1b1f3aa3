"""Learning-rate callbacks, every one of them.

- ``LRSchedulerCallback`` steps any ``torch.optim.lr_scheduler`` scheduler, once per update
  (``interval="step"``) or once per epoch;
- ``LearningRateScheduler`` sets the lr from a function of the epoch (Keras);
- ``ReduceLROnPlateau`` lowers the lr when a monitored value stops improving (Keras rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from labpkg.callbacks.base import Callback
from labpkg.callbacks.monitor import MissingKeyWarner, MonitorMode, is_improvement, resolve_mode
from labpkg.core.checks import as_int, check_lr
from labpkg.core.counting import updates_from_batches

__all__ = [
    "LRSchedulerCallback",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "current_lr",
    "rescale_lr",
    "set_lr",
]


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group to one value."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def rescale_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the first parameter group's learning rate to ``lr`` and scale the others alike.

    Every group is multiplied by the same factor, lr / (the first group's lr), so groups
    keep their ratios: a head training at 10× the backbone's rate stays at 10×.

    Example:
        >>> a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        >>> opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.01)
        >>> rescale_lr(opt, 0.005)
        >>> [group["lr"] for group in opt.param_groups]
        [0.005, 0.05]
    """
    first = current_lr(optimizer)
    rates = [group["lr"] for group in optimizer.param_groups]
    if first == 0 and any(rate != 0 for rate in rates):
        raise ValueError(
            f"the first parameter group's lr is 0 while others are not ({rates}): no factor "
            "turns 0 into the new lr; give the first group a rate > 0"
        )
    for group in optimizer.param_groups:  # groups at the first group's rate get lr exactly
        group["lr"] = lr if group["lr"] == first else group["lr"] * (lr / first)


class LRSchedulerCallback(Callback):
    """Step a ``torch.optim.lr_scheduler`` scheduler at the right moment, and log the lr.

    Args:
        scheduler: any PyTorch scheduler built on the trainer's optimizer.
        interval: ``"step"`` steps after every optimizer update (e.g. ``OneCycleLR``);
            ``"epoch"`` steps at each epoch end, after validation.
        monitor: the log key a ``ReduceLROnPlateau`` scheduler watches (required for it;
            torch's plateau rules differ from Keras's, which ``labpkg.ReduceLROnPlateau``
            follows).

    Adds ``learning_rate`` (the value used during the epoch) to the epoch logs. A scheduler
    with a fixed number of steps (``OneCycleLR``'s ``total_steps``) that this ``fit`` would
    step past is refused before the first mini-batch trains.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from labpkg.loop.trainer import Trainer
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=1.0)
        >>> halve = LRSchedulerCallback(torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5))
        >>> pairs = TensorDataset(torch.rand(8, 3, 4, 4), torch.randint(0, 2, (8, 4, 4)))
        >>> trainer = Trainer(model, opt, "cross_entropy")
        >>> _ = trainer.fit(DataLoader(pairs, batch_size=4), 3, callbacks=[halve], verbose=0)
        >>> trainer.history.history["learning_rate"]  # the rate each epoch trained with
        [1.0, 0.5, 0.25]
    """

    log_keys: tuple[str, ...] = ("learning_rate",)  # the keys it adds to the logs

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str | None = None):
        super().__init__()
        if interval not in ("epoch", "step"):
            raise ValueError(f"interval must be 'epoch' or 'step', got {interval!r}")
        _check_scheduler(scheduler)
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if plateau and (monitor is None or interval != "epoch"):
            raise ValueError(
                "a torch ReduceLROnPlateau scheduler steps on a monitored value once per "
                "epoch: pass monitor= (e.g. 'val_loss') and interval='epoch', or use "
                "labpkg.ReduceLROnPlateau(monitor='val_loss') in callbacks (Keras rules)"
            )
        self.scheduler, self.interval, self.monitor = scheduler, interval, monitor
        self._plateau, self._epoch_lr = plateau, 0.0
        self._total_checked = False
        self._warn_missing = MissingKeyWarner("LRSchedulerCallback", monitor or "")

    def default_key(self) -> str:
        return f"LRSchedulerCallback({type(self.scheduler).__name__})"

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.scheduler.optimizer is not self.trainer.optimizer:
            raise ValueError(
                "the scheduler was built on another optimizer than the trainer's, so it would "
                "change nothing: build it on trainer.optimizer"
            )
        self._total_checked = False  # at the first epoch or mini-batch: a resume is known then

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_lr = current_lr(self.trainer.optimizer)
        if not self._total_checked:
            self._check_total(epoch, batch=0)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if not self._total_checked:  # a mid-epoch resume has no on_epoch_begin
            self._check_total(self.trainer.state.epoch, batch)

    def on_update_end(self, step: int, logs: dict | None = None) -> None:
        # once per optimizer update (with accumulation, not after every mini-batch)
        if self.interval == "step":
            self.scheduler.step()

    def _check_total(self, epoch: int, batch: int) -> None:
        """Refuse a run longer than the scheduler's ``total_steps`` (``OneCycleLR``), now
        rather than with torch's error once training reaches the step past its end."""
        self._total_checked = True
        total = getattr(self.scheduler, "total_steps", None)
        if total is None:
            return
        state, epochs_left = self.trainer.state, self.trainer.state.epochs - epoch
        per_epoch = 1  # interval="epoch"
        needed = epochs_left
        if self.interval == "step":  # updates: groups of accumulate_grad_batches mini-batches
            per_epoch = updates_from_batches(state.batches_per_epoch, self.trainer.accumulate)
            needed = per_epoch * epochs_left - batch // self.trainer.accumulate
        left = total - self.scheduler.last_epoch  # steps it can still take
        if needed > left:
            raise ValueError(
                f"{type(self.scheduler).__name__} was built for total_steps={total} ({left} "
                f"left), but this fit steps it {needed} times ({per_epoch} per epoch, "
                f"{epochs_left} epochs): build it with total_steps={total - left + needed}"
                + (" (updates, not mini-batches)" if self.trainer.accumulate > 1 else "")
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self._epoch_lr
        if self.interval != "epoch":
            return
        if not self._plateau:
            self.scheduler.step()
        elif logs and self.monitor in logs:
            self.scheduler.step(logs[self.monitor])
        else:
            self._warn_missing(logs or {})  # a misspelt monitor would never step

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "epoch_lr": self._epoch_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self._epoch_lr = state["epoch_lr"]


def _check_scheduler(scheduler: Any) -> None:
    """A torch scheduler instance, not a class or a labpkg callback."""
    if isinstance(scheduler, Callback):
        raise TypeError(
            f"{type(scheduler).__name__} is a labpkg callback, not a torch scheduler: pass "
            "it in callbacks=[...] directly, without LRSchedulerCallback"
        )
    if isinstance(scheduler, type) or not callable(getattr(scheduler, "step", None)):
        raise TypeError(
            "scheduler must be a torch.optim.lr_scheduler scheduler built on the optimizer, "
            f"e.g. StepLR(optimizer, step_size=10), got {scheduler!r}"
        )


class ReduceLROnPlateau(MonitorMode, Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving (Keras rules).

    At each epoch end: log the current lr as ``learning_rate``; if in cooldown, count it down
    and reset ``wait``; on an improvement (by more than the *absolute* ``min_delta``) reset
    ``wait``, else, outside cooldown, ``wait += 1``; when ``wait >= patience`` and the lr is
    above ``min_lr``, set lr = max(lr · factor, min_lr), start the cooldown, reset ``wait``.
    Each parameter group is multiplied by ``factor`` on its own, so groups keep their ratios
    (until one reaches ``min_lr``); ``learning_rate`` logs the first group's.

    PyTorch's ``torch.optim.lr_scheduler.ReduceLROnPlateau`` differs: its threshold is
    *relative* by default and it reduces when the bad epochs *exceed* ``patience``, one epoch
    later than this callback.

    Args:
        monitor: log key to watch (default ``"val_loss"``).
        factor: multiplier, in (0, 1) (default 0.1).
        patience: epochs without improvement before reducing (default 10).
        mode: ``"auto"`` (as ``EarlyStopping``'s), ``"min"`` or ``"max"``.
        min_delta: absolute improvement threshold (default 1e-4).
        cooldown: epochs to wait after a reduction before counting again (default 0).
        min_lr: lower bound of the lr (default 0).
        verbose: 1 prints each reduction.

    Example:
        >>> from types import SimpleNamespace
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> plateau = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1)
        >>> plateau.set_trainer(SimpleNamespace(optimizer=opt))  # fit() does this
        >>> plateau.on_train_begin()
        >>> for epoch, val_loss in enumerate([1.0, 1.0, 1.0]):  # no improvement after epoch 1
        ...     plateau.on_epoch_end(epoch, {"val_loss": val_loss})
        >>> opt.param_groups[0]["lr"]  # halved after epochs 2 and 3 (patience 1)
        0.25
    """

    log_keys: tuple[str, ...] = ("learning_rate",)  # the keys it adds to the logs

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1): it multiplies the lr, got {factor}")
        patience, cooldown = as_int(patience, "patience", 0), as_int(cooldown, "cooldown", 0)
        min_lr = check_lr(min_lr, "min_lr")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.mode, self.min_delta = resolve_mode(monitor, mode), abs(min_delta)
        self.cooldown, self.min_lr, self.verbose = cooldown, min_lr, verbose
        self._warn_missing = MissingKeyWarner("ReduceLROnPlateau", monitor)
        self.on_train_begin()

    def default_key(self) -> str:
        return f"ReduceLROnPlateau({self.monitor})"

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.cooldown_counter, self.best = 0, 0, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        lr = current_lr(self.trainer.optimizer)
        logs["learning_rate"] = lr  # the value this epoch trained with
        if self.monitor not in logs:
            self._warn_missing(logs)
            return
        current = float(logs[self.monitor])
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if is_improvement(current, self.best, self.mode, self.min_delta):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            groups = self.trainer.optimizer.param_groups
            if self.wait >= self.patience and any(g["lr"] > self.min_lr for g in groups):
                for group in groups:  # each group scaled: their ratios stay (down to min_lr)
                    if group["lr"] > self.min_lr:
                        group["lr"] = max(group["lr"] * self.factor, self.min_lr)
                self.cooldown_counter, self.wait = self.cooldown, 0
                if self.verbose:
                    new_lr = current_lr(self.trainer.optimizer)
                    print(f"epoch {epoch + 1}: learning rate {lr:.3g} -> {new_lr:.3g}")

    def state_dict(self) -> dict[str, Any]:
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait, self.cooldown_counter = state["wait"], state["cooldown_counter"]
        self.best = state["best"]


class LearningRateScheduler(Callback):
    """Set the lr to ``schedule(epoch, lr)`` at the start of every epoch (0-based epoch).

    ``lr`` is the first parameter group's; the other groups are scaled by the same factor, so
    they keep their ratios to it (``rescale_lr``).

    Args:
        schedule: a function of (epoch, current lr) returning the new lr.
        verbose: 1 prints the lr of each epoch.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from labpkg.loop.trainer import Trainer
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=1.0), "cross_entropy")
        >>> halve = LearningRateScheduler(lambda epoch, lr: lr if epoch < 1 else lr * 0.5)
        >>> pairs = TensorDataset(torch.rand(8, 3, 4, 4), torch.randint(0, 2, (8, 4, 4)))
        >>> _ = trainer.fit(DataLoader(pairs, batch_size=4), 3, callbacks=[halve], verbose=0)
        >>> trainer.history.history["learning_rate"]
        [1.0, 0.5, 0.25]
    """

    log_keys: tuple[str, ...] = ("learning_rate",)  # the keys it adds to the logs

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError("schedule must be a function (epoch, lr) -> lr")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = self.schedule(epoch, current_lr(self.trainer.optimizer))
        lr = check_lr(lr, f"the lr that schedule({epoch}, lr) returns")
        rescale_lr(self.trainer.optimizer, lr)
        if self.verbose:
            print(f"epoch {epoch + 1}: learning rate {lr:.3g}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = current_lr(self.trainer.optimizer)

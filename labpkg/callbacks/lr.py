"""Learning-rate callbacks: wrap any PyTorch scheduler, per step or per epoch."""

from __future__ import annotations

from typing import Any

import torch

from labpkg.callbacks.base import Callback

__all__ = ["LRSchedulerCallback", "current_lr", "set_lr"]


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


class LRSchedulerCallback(Callback):
    """Step a ``torch.optim.lr_scheduler`` scheduler at the right moment, and log the lr.

    Args:
        scheduler: any PyTorch scheduler built on the trainer's optimizer.
        interval: ``"step"`` steps after every optimizer update (e.g. ``OneCycleLR``);
            ``"epoch"`` steps at each epoch end, after validation.
        monitor: the log key a ``ReduceLROnPlateau`` scheduler watches (required for it).

    Adds ``learning_rate`` (the value used during the epoch) to the epoch logs.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> cb = LRSchedulerCallback(torch.optim.lr_scheduler.StepLR(opt, step_size=1))
        >>> cb.interval
        'epoch'
    """

    def __init__(self, scheduler: Any, interval: str = "epoch", monitor: str | None = None):
        super().__init__()
        if interval not in ("epoch", "step"):
            raise ValueError(f"interval must be 'epoch' or 'step', got {interval!r}")
        plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if plateau and monitor is None:
            raise ValueError("a ReduceLROnPlateau scheduler needs monitor=, e.g. 'val_loss'")
        self.scheduler, self.interval, self.monitor, self._plateau = (
            scheduler,
            interval,
            monitor,
            plateau,
        )
        self._steps_seen = 0
        self._epoch_lr = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_lr = current_lr(self.trainer.optimizer)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # step only when the optimizer really updated (gradient accumulation skips batches)
        if self.interval == "step" and self.trainer.state.global_step > self._steps_seen:
            self._steps_seen = self.trainer.state.global_step
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self._epoch_lr
        if self.interval != "epoch":
            return
        if self._plateau:
            if logs and self.monitor in logs:
                self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "steps_seen": self._steps_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self._steps_seen = state["steps_seen"]

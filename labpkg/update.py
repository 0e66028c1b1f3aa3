"""One optimizer update, as ``Trainer`` makes it at the end of each accumulation group.

The order, and why (``torch.amp.GradScaler`` documents the first three rules)::

    scaler.unscale_(optimizer)          # once per update, after the group's last backward
    callbacks.on_after_backward(batch)  # the group's whole gradient, unscaled, not clipped
    clip_grad_norm_(params, max_norm)   # if grad_clip_norm: clip the true gradient
    callbacks.on_before_optimizer_step(batch)  # exactly the gradient the step applies
    scaler.step(optimizer)              # skipped if float16 gradients overflowed
    scaler.update()
    optimizer.zero_grad(set_to_none=True)

``unscale_`` may run only once per ``step`` and only after every gradient of the step has been
accumulated (a second call raises ``RuntimeError``), so the gradient hooks fire once per
update, never after each mini-batch's backward: in the middle of a group the gradient is a
partial sum, still multiplied by the float16 scale. Without a GradScaler ``unscale_`` does
nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from labpkg import counting

__all__ = ["AppliedSteps", "optimizer_update", "finish_short_epoch"]


class AppliedSteps:
    """Counts the ``optimizer.step()`` calls that really ran (the scaler skips some)."""

    def __init__(self, optimizer: Any) -> None:
        self.count = 0
        optimizer.register_step_post_hook(self._count)

    def _count(self, *_: Any) -> None:
        self.count += 1


def optimizer_update(trainer: Any, batch: int | None) -> None:
    """Unscale, the gradient hooks, clip, step, zero the gradients (the order above).

    Args:
        trainer: the ``Trainer``; its optimizer, scaler, model, callbacks and state.
        batch: the 0-based mini-batch that ends the group, handed to the hooks; None calls
            no hook (the learning-rate finder updates outside ``fit``).
    """
    optimizer, scaler = trainer.optimizer, trainer.scaler
    scaler.unscale_(optimizer)  # a no-op without float16's GradScaler
    if batch is not None:
        trainer.callbacks.on_after_backward(batch)
    if trainer.grad_clip_norm is not None:
        nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.grad_clip_norm)
    if batch is not None:
        trainer.callbacks.on_before_optimizer_step(batch)
    applied = trainer.applied_steps.count
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if trainer.applied_steps.count == applied:
        trainer.state.skipped_updates += 1


def finish_short_epoch(trainer: Any, done: int) -> None:
    """Close an epoch whose loader ran out after ``done`` mini-batches, before
    ``batches_per_epoch`` (an ``IterableDataset`` shorter than ``steps_per_epoch``).

    The accumulation group in progress still gets its update. Each of its mini-batches added
    loss / (the group's planned size); the gradient is rescaled to the mean over the ones that
    ran, so this update follows the same rule as every other one.

    Args:
        trainer: the ``Trainer``.
        done: mini-batches of this epoch that ran (counted from 0, resumed ones included).
    """
    state, k = trainer.state, trainer.accumulate
    planned = state.batches_per_epoch
    if done >= planned:
        return
    warnings.warn(
        f"train ran out after {done} mini-batches of steps_per_epoch={planned}: the epoch "
        "ends there; pass a steps_per_epoch the stream can give",
        stacklevel=3,
    )
    last = done - 1
    if done == 0 or counting.ends_update(last, k, planned):
        return  # no gradient waiting
    ran = last % k + 1  # mini-batches of the unfinished group
    scale = counting.group_size(last, k, planned) / ran
    for param in trainer.model.parameters():
        if param.grad is not None:
            param.grad.mul_(scale)
    optimizer_update(trainer, last)
    state.global_step += 1

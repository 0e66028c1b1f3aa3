"""One optimizer update, as ``Trainer.optimizer_step`` makes it at the end of each group.

The order, and why (``torch.amp.GradScaler`` documents the first three rules)::

    scaler.unscale_(optimizer)          # once per update, after the group's last backward
    callbacks.on_after_backward(batch)  # the group's whole gradient, unscaled, not clipped
    clip_grad_norm_(params, max_norm)   # if grad_clip_norm: clip the true gradient
    callbacks.on_before_optimizer_step(batch)  # exactly the gradient the step applies
    optimizer.step()                    # float16: scaler.step(optimizer), then
                                        # scaler.update(); skipped if gradients overflowed
    optimizer.zero_grad(set_to_none=True)
    global_step += 1; callbacks.on_update_end(global_step)

``unscale_`` may run only once per ``step`` and only after every gradient of the step has been
accumulated (a second call raises ``RuntimeError``), so the gradient hooks fire once per
update, never after each mini-batch's backward: in the middle of a group the gradient is a
partial sum, still multiplied by the float16 scale. Without a GradScaler ``unscale_`` does
nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

from labpkg.core import counting

__all__ = ["AppliedSteps", "finish_short_epoch"]


class AppliedSteps:
    """Counts the ``optimizer.step()`` calls that really ran (the scaler skips some).

    Counting is a hook on the user's optimizer, there only inside ``with``: ``fit`` and
    ``lr_find`` hold it while they run, so no hook stays behind, nor piles up when several
    Trainers share one optimizer.
    """

    def __init__(self, optimizer: Any) -> None:
        self.count = 0
        self.optimizer = optimizer
        self._handle: Any = None

    def __enter__(self) -> AppliedSteps:
        self._handle = self.optimizer.register_step_post_hook(self._count)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._handle.remove()
        self._handle = None

    def _count(self, *_: Any) -> None:
        self.count += 1


def finish_short_epoch(trainer: Any, done: int) -> None:
    """Close an epoch whose loader ran out after ``done`` mini-batches, before
    ``batches_per_epoch`` (an ``IterableDataset`` shorter than ``fit(batches_per_epoch=)``).

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
        f"train ran out after {done} mini-batches of batches_per_epoch={planned}: the epoch "
        "ends there; pass a batches_per_epoch the stream can give",
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
    trainer.optimizer_step(last)

"""The callback protocol: named hooks the Trainer calls at fixed points of the loop.

Where each hook fires (a simplified ``Trainer.fit``)::

    callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        if trainer.state.stop_training: break              # no further epoch starts
        callbacks.on_epoch_begin(epoch)
        for batch, (x, y) in enumerate(train_loader):
            callbacks.on_train_batch_begin(batch)
            ...forward, loss, backward...
            if the mini-batch ends an accumulation group (every k, and the epoch's last):
                ...unscale the gradient (float16's GradScaler)...
                callbacks.on_after_backward(batch)         # the whole group's gradient
                ...clip it (grad_clip_norm)...
                callbacks.on_before_optimizer_step(batch)  # the gradient the step applies
                ...optimizer step, zero_grad; global_step += 1...
                callbacks.on_update_end(global_step)       # once per update, after it
            callbacks.on_train_batch_end(batch, logs)      # logs: running epoch means
            ...write the checkpoints callbacks asked for...
            if trainer.state.stop_training: break          # the epoch ends here
        callbacks.on_test_begin()                          # validation, if due
        for batch, (x, y) in enumerate(val_loader):
            callbacks.on_test_batch_begin(batch)
            callbacks.on_test_batch_end(batch, logs)
        callbacks.on_test_end(logs)
        callbacks.on_epoch_end(epoch, logs)                # logs: loss, metrics, val_*
        ...write the checkpoints callbacks asked for...
    callbacks.on_train_end(logs)

``epoch`` and ``batch`` are 0-based. A callback changes training only through what it is given:
``trainer.state.stop_training = True``, the optimizer's learning rate, the model's weights.
The loop looks at ``stop_training`` in the two places marked above, after each mini-batch and
before each epoch, and training ends at whichever comes next; the current epoch's validation
and ``on_epoch_end`` still run, as in Keras. A stop in the middle of an accumulation group
makes no update from the part of the group that ran.

The two gradient hooks fire once per optimizer update, not once per backward: with
``accumulate_grad_batches=k`` the gradient is complete only after the group's last backward,
and ``GradScaler.unscale_`` may run only then, once (``labpkg.loop.update``). Both see
``param.grad`` summed over the group (and averaged over processes under data parallelism),
divided by the float16 scale; ``on_after_backward`` before clipping, ``on_before_optimizer_step``
after it. A step the GradScaler then skips (overflow) still had both hooks. Lightning has hooks
of these names with other moments: its ``on_after_backward`` runs after every backward, with
gradients still scaled, and its ``on_before_optimizer_step`` before clipping.

``on_update_end(step)`` fires after each update (``step`` is ``global_step``, 1 for the
first), skipped float16 steps included: a callback that acts per update (a learning-rate
schedule, an evaluation every k updates) needs no comparison of counters to find it. One
update has no mini-batch after it: when a stream runs out before ``batches_per_epoch``, the
update of its unfinished group comes after the epoch's last ``on_train_batch_end``, so a
callback that waits for the end of the mini-batch to act on an update also looks in
``on_epoch_end`` (``ModelCheckpoint`` and ``EvaluateEvery`` do).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labpkg.core import distributed

__all__ = ["Callback", "CallbackList"]


class Callback:
    """Base class: override the hooks you need; each receives 0-based counters and logs.

    Attributes:
        trainer (Trainer): the Trainer running the callback (set before ``on_train_begin``).
        rank_zero_only (bool): True for callbacks with side effects (files, printing): under data
            parallelism they run in process 0 only.

    Example:
        >>> class PrintEpoch(Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch + 1} done")
        >>> PrintEpoch().on_epoch_end(0)
        epoch 1 done
    """

    rank_zero_only = False

    def __init__(self) -> None:
        self.trainer: Any = None

    def set_trainer(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_after_backward(self, batch: int, logs: dict | None = None) -> None: ...
    def on_before_optimizer_step(self, batch: int, logs: dict | None = None) -> None: ...
    def on_update_end(self, step: int, logs: dict | None = None) -> None: ...

    #: The name this callback's state has in checkpoints (None means ``default_key()``).
    #: Set it when two callbacks of one kind would otherwise share a key.
    key: str | None = None

    def state_key(self) -> str:
        """The name of this callback's state in a checkpoint (its class, plus what it watches).

        A resumed run hands each saved state to the callback with the same key, wherever it
        stands in the list.
        """
        return self.key or self.default_key()

    def default_key(self) -> str:
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep so that a resumed run continues (e.g. patience)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


#: The hook names, in the order the base class lists them.
HOOKS = [name for name in vars(Callback) if name.startswith("on_")]


def _overrides(callback: Callback, hook: str) -> bool:
    """False if ``callback``'s ``hook`` is the base class's, which does nothing."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)


class CallbackList:
    """Calls each hook on every callback, in list order.

    The Trainer appends ``History`` and the progress bar last, so they see keys that other
    callbacks add to the logs (for example ``learning_rate``).
    """

    def __init__(self, callbacks: Iterable[Callback], trainer: Any) -> None:
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
            if any(cb is other for other in self.callbacks[:i]):
                # its hooks would run twice per event: an EarlyStopping would count each epoch
                # twice and stop after half its patience
                raise ValueError(
                    f"the same {type(cb).__name__} appears twice in callbacks: pass it once "
                    "(for two of a kind, build two instances)"
                )
            cb.set_trainer(trainer)
        self.trainer = trainer
        is_rank_zero = distributed.rank() == 0
        active = [cb for cb in self.callbacks if is_rank_zero or not cb.rank_zero_only]
        # each hook's methods, found once: a hook that no callback overrides (most mini-batch
        # hooks, most of the time) then costs the loop nothing
        self._hooks = {
            hook: [getattr(cb, hook) for cb in active if _overrides(cb, hook)] for hook in HOOKS
        }

    def __iter__(self):
        return iter(self.callbacks)

    def listens(self, hook: str) -> bool:
        """Does any callback here override ``hook``? The loop builds the logs of a mini-batch
        hook only for a listener (the running mean is a tensor operation per mini-batch)."""
        return bool(self._hooks[hook])

    def _call(self, hook: str, *args: Any) -> None:
        for method in self._hooks[hook]:
            method(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)

    def on_after_backward(self, batch, logs=None):
        self._call("on_after_backward", batch, logs)

    def on_before_optimizer_step(self, batch, logs=None):
        self._call("on_before_optimizer_step", batch, logs)

    def on_update_end(self, step, logs=None):
        self._call("on_update_end", step, logs)

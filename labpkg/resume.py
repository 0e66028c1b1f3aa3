"""Resuming a run exactly: what a training checkpoint holds, and how a resumed epoch replays.

A checkpoint records **where training stands** (``Position``) and everything needed to go on
from there as if nothing had happened. Besides model, optimizer, scaler and counters it keeps:

- **the conditions of the run** (``labpkg.fingerprint``): data order, accumulation, processes,
  optimizer class, mixed precision; a resume under other conditions is refused, naming them;
- **callback state by key** (``Callback.state_key()``), never by list position, so adding a
  callback on resume cannot hand one callback's state to another;
- **random generators**: the global ones and those the loader, its sampler and its dataset's
  transforms own, now and (mid-epoch) as they were when the epoch's data order was drawn, so
  a resumed epoch replays the same order and augmentations and skips the mini-batches done;
- **the epoch in progress** (mid-epoch): running loss, metric counts and the gradients of an
  unfinished accumulation group.

Putting a checkpoint back is ``labpkg.restore``'s job: it checks everything first, then loads.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from typing import Any, NamedTuple

from labpkg.checkpoint import rng_state, set_rng_state
from labpkg.evaluation import RunningLoss
from labpkg.fingerprint import fingerprint
from labpkg.reproducibility import data_generators

__all__ = [
    "FORMAT",
    "Position",
    "ResumePoint",
    "trainer_state",
    "position_now",
    "epoch_start_state",
    "set_random_state",
    "continue_epoch",
    "replay_epoch",
]

FORMAT = 3  # 3: the run's fingerprint and the data pipeline's generators


class ResumePoint(NamedTuple):
    """Where a resumed run continues: an epoch, and the first mini-batch to run in it."""

    epoch: int
    batch: int


class Position(NamedTuple):
    """Where training stands: after mini-batch ``batch`` of ``epoch`` (-1: before its first),
    or after the whole epoch if ``complete`` (its validation and epoch-end hooks included).

    Example:
        >>> Position(0, -1, complete=False).next()  # nothing trained yet
        ResumePoint(epoch=0, batch=0)
        >>> Position(2, 4, complete=True).next()
        ResumePoint(epoch=3, batch=0)
    """

    epoch: int
    batch: int
    complete: bool

    def next(self) -> ResumePoint:
        """The first mini-batch not yet run."""
        if self.complete:
            return ResumePoint(self.epoch + 1, 0)
        return ResumePoint(self.epoch, self.batch + 1)

    @property
    def mid_epoch(self) -> bool:
        """True if part of the epoch has run (its running sums must be kept)."""
        return not self.complete and self.batch >= 0


def position_now(trainer: Any) -> Position:
    """Where ``trainer`` stands, for ``Trainer.save_checkpoint``.

    Before any ``fit``: before epoch 0. After a ``fit``: after its last epoch. After a Ctrl-C
    (which waits for the end of the mini-batch): after that mini-batch, the epoch unfinished.

    Raises:
        RuntimeError: during ``fit`` (from a callback): the hook has not run everywhere yet;
            ask with ``trainer.checkpoints.request(path)``, as ``ModelCheckpoint`` does.
        ValueError: after a ``fit`` that an exception (or a second Ctrl-C) cut short inside a
            mini-batch or a hook: no point exists there to continue from exactly.
    """
    if trainer._fitting:
        raise RuntimeError(
            "save_checkpoint() during fit would save a half-run hook: from a callback, "
            "call self.trainer.checkpoints.request(path) (or use ModelCheckpoint)"
        )
    if trainer.position is None:
        raise ValueError(
            "the last fit was interrupted inside a mini-batch or a callback, not between "
            "mini-batches, so no position exists to continue from exactly; resume from "
            "the last checkpoint ModelCheckpoint wrote (a single Ctrl-C waits for the end "
            "of the mini-batch)"
        )
    return trainer.position


COUNTERS = ("global_step", "skipped_updates", "batches_seen", "samples_seen")


def trainer_state(trainer: Any, position: Position) -> dict[str, Any]:
    """A Trainer's full state at ``position``: what a training checkpoint holds."""
    state, model, optimizer = trainer.state, trainer.model, trainer.optimizer
    saved: dict[str, Any] = {
        "format": FORMAT,
        "position": position._asdict(),
        "fingerprint": fingerprint(trainer),
        "counters": {k: getattr(state, k) for k in COUNTERS},
        "stop_training": state.stop_training,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "callbacks": _callback_states(trainer.callbacks),
        **epoch_start_state(trainer.train_loader),  # the random state now
    }
    if position.mid_epoch:
        if trainer.resume_progress is not None:
            raise ValueError(
                "this trainer was restored from a mid-epoch checkpoint and has not continued "
                "it yet: copy that checkpoint's file instead, or save after fit"
            )
        saved["epoch_start"] = trainer.epoch_start
        saved["progress"] = {
            "loss_sum": trainer.running_loss.sum.detach().clone(),
            "count": trainer.running_loss.count,
            "metrics": [_metric_state(m) for m in trainer.metrics],
            "grads": [p.grad for p in model.parameters()],  # an unfinished group's sum
        }
    return saved


def _callback_states(callbacks) -> dict[str, dict]:
    states: dict[str, dict] = {}
    for callback in callbacks:
        state = callback.state_dict()
        if not state:
            continue  # nothing to keep (History, progress bar, ...)
        key = callback.state_key()
        if key in states:
            raise ValueError(
                f"two callbacks share the state key {key!r}; set .key on one of them so a "
                "resumed run can tell their states apart"
            )
        states[key] = state
    return states


def _metric_state(metric: Any) -> dict:
    if not hasattr(metric, "state_dict"):
        raise TypeError(
            f"a mid-epoch checkpoint must keep the epoch's metric counts, but "
            f"{type(metric).__name__} has no state_dict(); add state_dict/load_state_dict, "
            "or checkpoint at epoch ends (save_freq='epoch')"
        )
    return metric.state_dict()


def epoch_start_state(loader: Any) -> dict[str, Any]:
    """The random state now: the global generators and those the data pipeline owns.

    Taken before ``iter(loader)``, it is what decides the epoch's data order.
    """
    owned = {} if loader is None else data_generators(loader)
    return {"rng": rng_state(), "generators": {k: g.get_state() for k, g in owned.items()}}


def set_random_state(saved: dict[str, Any], loader: Any) -> None:
    """Put back what ``epoch_start_state`` took (the generators ``loader`` still owns)."""
    set_rng_state(saved["rng"])
    owned = {} if loader is None else data_generators(loader)
    for where, state in saved["generators"].items():
        if where in owned:  # all of them unless an inexact resume was accepted
            owned[where].set_state(state)


def continue_epoch(trainer: Any) -> int:
    """Put back a mid-epoch checkpoint's epoch in progress; returns its next mini-batch.

    The random state goes back to the start of the epoch, so that drawing the data order
    again gives the same order (``replay_epoch``).
    """
    progress = trainer.resume_progress
    trainer.running_loss = RunningLoss(progress["loss_sum"].to(trainer.device), progress["count"])
    for metric, state in zip(trainer.metrics, progress["metrics"], strict=True):
        metric.load_state_dict(state)
    for param, grad in zip(trainer.model.parameters(), progress["grads"], strict=True):
        param.grad = None if grad is None else grad.to(param.device)
    trainer.epoch_start = progress["epoch_start"]
    set_random_state(progress["epoch_start"], trainer.train_loader)
    return progress["first"]


def replay_epoch(trainer: Any, first: int) -> Iterator:
    """The resumed epoch's loader iterator, at mini-batch ``first``.

    ``continue_epoch`` put back the random state of the epoch's start, so ``iter`` draws the
    same order again; the mini-batches that already ran are skipped (read, not trained on:
    reading them draws their augmentations, as the interrupted run did), then the random
    state of the checkpoint itself comes back (dropout, augmentation).
    """
    batches = iter(trainer.train_loader)
    collections.deque(itertools.islice(batches, first), maxlen=0)  # consume `first` batches
    progress, trainer.resume_progress = trainer.resume_progress, None
    set_random_state(progress["now"], trainer.train_loader)
    return batches

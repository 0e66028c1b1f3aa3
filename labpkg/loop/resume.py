"""Resuming a run exactly: what a training checkpoint holds, and how a resumed epoch replays.

A checkpoint records **where training stands** (``Position``) and everything needed to go on
from there as if nothing had happened. Besides model, optimizer, scaler and counters it keeps:

- **the conditions of the run** (``labpkg.loop.fingerprint``): data order, accumulation, processes,
  optimizer class, mixed precision; a resume under other conditions is refused, naming them;
- **callback state by key** (``Callback.state_key()``), never by list position, so adding a
  callback on resume cannot hand one callback's state to another;
- **random generators**: the global ones and those the loader, its sampler and its dataset's
  transforms own, now and (mid-epoch) as they were when the epoch's data order was drawn, so
  a resumed epoch replays the same order and augmentations and skips the mini-batches done;
- **the epoch in progress** (mid-epoch): running loss, metric counts and the gradients of an
  unfinished accumulation group.

Putting a checkpoint back is ``labpkg.loop.restore``'s job: it checks everything first, then loads.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from labpkg.core.checkpoint import rng_state, set_rng_state
from labpkg.core.reproducibility import data_generators
from labpkg.loop.evaluation import RunningLoss
from labpkg.loop.fingerprint import fingerprint

__all__ = [
    "FORMAT",
    "Position",
    "ResumePoint",
    "EpochInProgress",
    "training_state",
    "position_now",
    "random_state",
    "set_random_state",
    "epoch_batches",
]

FORMAT = 4  # 4: the counters as TrainState.state_dict() under "state"; "epoch_rng"


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


@dataclass
class EpochInProgress:
    """A mid-epoch checkpoint's unfinished epoch, put back when the next ``fit`` starts it.

    Attributes:
        first: the first mini-batch still to run (0-based).
        loss_sum, count: the epoch's ``RunningLoss`` so far.
        metrics: each training metric's ``state_dict()``.
        grads: each parameter's gradient (an unfinished accumulation group's sum), or None.
        epoch_rng: the random state that drew the epoch's data order (``random_state``).
        rng_now: the random state when the checkpoint was taken.
    """

    first: int
    loss_sum: torch.Tensor
    count: int
    metrics: list[dict]
    grads: list[torch.Tensor | None]
    epoch_rng: dict[str, Any]
    rng_now: dict[str, Any]


def position_now(trainer: Any) -> Position:
    """Where ``trainer`` stands, for ``Trainer.save_training_state``.

    Before any ``fit``: before epoch 0. After a ``fit``: after its last epoch. After a Ctrl-C
    (which waits for the end of the mini-batch): after that mini-batch, the epoch unfinished.

    Raises:
        RuntimeError: during ``fit`` (from a callback): the hook has not run everywhere yet;
            ask with ``trainer.checkpoint_queue.request(path)``, as ``ModelCheckpoint`` does.
        ValueError: after a ``fit`` that an exception (or a second Ctrl-C) cut short inside a
            mini-batch or a hook: no point exists there to continue from exactly.
    """
    if trainer._fitting:
        raise RuntimeError(
            "save_training_state() during fit would save a half-run hook: from a callback, "
            "call self.trainer.checkpoint_queue.request(path) (or use ModelCheckpoint)"
        )
    if trainer.position is None:
        raise ValueError(
            "the last fit was interrupted inside a mini-batch or a callback, not between "
            "mini-batches, so no position exists to continue from exactly; resume from "
            "the last checkpoint ModelCheckpoint wrote (a single Ctrl-C waits for the end "
            "of the mini-batch)"
        )
    return trainer.position


def training_state(trainer: Any, position: Position) -> dict[str, Any]:
    """A Trainer's full state at ``position``: what a training checkpoint file holds (plain
    dicts, lists and tensors, so that ``torch.load(weights_only=True)`` reads it)."""
    model, optimizer = trainer.model, trainer.optimizer
    saved: dict[str, Any] = {
        "format": FORMAT,
        "position": position._asdict(),
        "fingerprint": fingerprint(trainer),
        "state": trainer.state.state_dict(),  # counters and stop_training
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "callbacks": _callback_states(trainer.callbacks),
        **random_state(trainer.train_loader),  # the random state now
    }
    if position.mid_epoch:
        if trainer.epoch_in_progress is not None:
            raise ValueError(
                "this trainer was restored from a mid-epoch checkpoint and has not continued "
                "it yet: copy that checkpoint's file instead, or save after fit"
            )
        saved["epoch_rng"] = trainer.epoch_rng
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


def random_state(loader: Any) -> dict[str, Any]:
    """The random state now: the global generators and those the data pipeline owns.

    Taken before ``iter(loader)``, it is what decides the epoch's data order.
    """
    owned = {} if loader is None else data_generators(loader)
    return {"rng": rng_state(), "generators": {k: g.get_state() for k, g in owned.items()}}


def set_random_state(saved: dict[str, Any], loader: Any) -> None:
    """Put back what ``random_state`` took (the generators ``loader`` still owns)."""
    set_rng_state(saved["rng"])
    owned = {} if loader is None else data_generators(loader)
    for where, state in saved["generators"].items():
        if where in owned:  # all of them unless an inexact resume was accepted
            owned[where].set_state(state)


def epoch_batches(trainer: Any) -> tuple[int, Iterator]:
    """The epoch's first mini-batch to run, and the loader's batches from there on: one
    factory for a fresh epoch and a resumed one.

    Sums, metric counts and gradients start from zero. A fresh epoch starts at mini-batch 0,
    its random state kept first (``trainer.epoch_rng``) for a mid-epoch checkpoint. A
    resumed one (``trainer.epoch_in_progress``) gets its sums, metric counts and gradients
    back, and the random state of the epoch's start, so that ``iter`` draws the same order
    again; the mini-batches that already ran are read (which draws their augmentations, as
    the interrupted run did) and skipped, then the random state of the checkpoint itself
    comes back (dropout, augmentation).
    """
    trainer.optimizer.zero_grad(set_to_none=True)  # accumulation never leaks across epochs
    for metric in trainer.metrics:
        metric.reset()
    trainer.running_loss = RunningLoss.zero(trainer.device)
    loader, resumed = trainer.train_loader, trainer.epoch_in_progress
    if resumed is not None:
        trainer.running_loss = RunningLoss(resumed.loss_sum.to(trainer.device), resumed.count)
        for metric, state in zip(trainer.metrics, resumed.metrics, strict=True):
            metric.load_state_dict(state)
        for param, grad in zip(trainer.model.parameters(), resumed.grads, strict=True):
            param.grad = None if grad is None else grad.to(param.device)
        set_random_state(resumed.epoch_rng, loader)
    first = 0 if resumed is None else resumed.first
    trainer.epoch_rng = random_state(loader) if resumed is None else resumed.epoch_rng
    batches = iter(loader)
    if resumed is not None:
        collections.deque(itertools.islice(batches, first), maxlen=0)  # skip `first` batches
        trainer.epoch_in_progress = None
        set_random_state(resumed.rng_now, loader)
    return first, itertools.islice(batches, trainer.state.batches_per_epoch - first)

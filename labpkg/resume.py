"""Resuming a run exactly: what a training checkpoint holds, and how it is put back.

A checkpoint is taken after every callback has run its hook (at the end of a mini-batch or of
an epoch), so it holds the state they all have at that point. Besides model, optimizer,
scaler and counters it keeps:

- **callback state by key** (``Callback.state_key()``), never by list position, so adding a
  callback on resume cannot hand one callback's state to another;
- **random generators**: now, and (mid-epoch) as they were when the epoch's data order was
  drawn, so a resumed epoch replays the same order and skips the mini-batches already done;
- **the epoch in progress** (mid-epoch): running loss, metric counts and the gradients of an
  unfinished accumulation group.

``restore`` validates everything first (model keys and shapes, optimizer type and groups,
callback keys, metric state), then applies: a failing restore changes nothing.
"""

from __future__ import annotations

import collections
import itertools
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch

from labpkg import distributed
from labpkg.checkpoint import (
    check_model_state,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from labpkg.evaluation import RunningLoss

__all__ = [
    "FORMAT",
    "Checkpoints",
    "ResumePoint",
    "trainer_state",
    "restore_trainer",
    "epoch_start_state",
    "continue_epoch",
    "replay_epoch",
]

FORMAT = 2


class ResumePoint(NamedTuple):
    """Where a resumed run continues: an epoch, and the first mini-batch to run in it."""

    epoch: int
    batch: int


class Checkpoints:
    """The checkpoints callbacks ask for, written once every callback has run the hook.

    ``ModelCheckpoint`` calls ``request`` in its ``on_epoch_end`` (or ``on_train_batch_end``);
    the Trainer calls ``flush`` after *all* callbacks have run that hook, so a checkpoint
    holds the state of callbacks listed after it too (patience, learning rate), whatever
    the order. Nothing is written once training has diverged (a non-finite loss or weight):
    the last good file stays.
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.pending: list[tuple[str, bool, dict, Callable | None]] = []
        self._warned = False

    def request(
        self,
        path: str | os.PathLike,
        weights_only: bool = False,
        extra: dict | None = None,
        on_saved: Callable[[], None] | None = None,
    ) -> None:
        """Ask for a checkpoint at ``path`` at the end of the current hook."""
        self.pending.append((os.fspath(path), weights_only, extra or {}, on_saved))

    def flush(self, complete: bool) -> None:
        """Write the requested checkpoints (after a mini-batch, or after an epoch if complete)."""
        pending, self.pending = self.pending, []
        if not pending or distributed.rank() != 0:
            return
        if not self._healthy():
            self._warn_diverged([path for path, *_ in pending])
            return
        model = self.trainer.model
        for path, weights_only, extra, on_saved in pending:
            obj = model.state_dict() if weights_only else {**trainer_state(self.trainer, complete)}
            save_checkpoint({**obj, **extra} if not weights_only else obj, path)
            if on_saved is not None:
                on_saved()

    def _healthy(self) -> bool:
        state = self.trainer.state
        if not state.diverged:
            values = [p.detach().isfinite().all() for p in self.trainer.model.parameters()]
            values.append(self.trainer.running_loss.sum.isfinite())
            state.diverged = not bool(torch.stack(values).all())  # one host read per save
        return not state.diverged

    def _warn_diverged(self, paths: list[str]) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"training diverged (a NaN or infinite loss or weight): not saving {paths}; "
                "the files written before stay as they were",
                stacklevel=3,
            )


def epoch_start_state(loader: Any) -> dict[str, Any]:
    """The random state that decides an epoch's data order (taken before ``iter(loader)``)."""
    generator = getattr(loader, "generator", None)
    return {"rng": rng_state(), "loader_rng": generator.get_state() if generator else None}


def trainer_state(trainer: Any, complete: bool) -> dict[str, Any]:
    """A Trainer's full state after the current epoch (``complete``) or mini-batch."""
    state, model, optimizer = trainer.state, trainer.model, trainer.optimizer
    saved: dict[str, Any] = {
        "format": FORMAT,
        "position": {"epoch": state.epoch, "batch": state.batch, "complete": complete},
        "counters": {k: getattr(state, k) for k in COUNTERS},
        "stop_training": state.stop_training,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_class": type(optimizer).__name__,
        "scaler": trainer.scaler.state_dict(),
        "callbacks": _callback_states(trainer.callbacks),
        **epoch_start_state(trainer.train_loader),  # the random state now
    }
    if not complete:
        saved["epoch_start"] = trainer.epoch_start
        saved["progress"] = {
            "loss_sum": trainer.running_loss.sum.detach().clone(),
            "count": trainer.running_loss.count,
            "metrics": [_metric_state(m) for m in trainer.metrics],
            "grads": [p.grad for p in model.parameters()],  # an unfinished group's sum
        }
    return saved


COUNTERS = ("global_step", "skipped_updates", "batches_seen", "samples_seen")


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


def restore_trainer(trainer: Any, path: str | os.PathLike) -> ResumePoint:
    """Validate the checkpoint at ``path`` against ``trainer``, then load all of it."""
    saved = load_checkpoint(path)
    _check_training_state(saved, path)
    check_model_state(trainer.model, saved["model"])
    _check_optimizer(trainer.optimizer, saved, path)
    callback_states = _match_callbacks(trainer.callbacks, saved["callbacks"], path)
    progress = saved.get("progress")
    if progress is not None and len(progress["metrics"]) != len(trainer.metrics):
        raise ValueError(
            f"{path} was taken mid-epoch with {len(progress['metrics'])} metrics; this trainer "
            f"has {len(trainer.metrics)}: pass the same metrics to resume"
        )
    # everything checked: from here on nothing can fail halfway
    trainer.model.load_state_dict(saved["model"])
    trainer.optimizer.load_state_dict(saved["optimizer"])
    trainer.scaler.load_state_dict(saved["scaler"])
    for key, value in saved["counters"].items():
        setattr(trainer.state, key, value)
    trainer.state.stop_training = saved["stop_training"]
    for callback, state in callback_states:
        callback.load_state_dict(state)
    _set_random_state(saved, trainer.train_loader)
    position = saved["position"]
    if position["complete"]:
        trainer.resume_progress = None
        return ResumePoint(position["epoch"] + 1, 0)
    now = {"rng": saved["rng"], "loader_rng": saved["loader_rng"]}
    first = position["batch"] + 1
    trainer.resume_progress = {**progress, "epoch_start": saved["epoch_start"], "now": now}
    trainer.resume_progress["first"] = first
    return ResumePoint(position["epoch"], first)


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
    _set_random_state(progress["epoch_start"], trainer.train_loader)
    return progress["first"]


def replay_epoch(trainer: Any, first: int) -> Iterator:
    """The resumed epoch's loader iterator, at mini-batch ``first``.

    ``continue_epoch`` put back the random state of the epoch's start, so ``iter`` draws the
    same order again; the mini-batches that already ran are skipped (read, not trained on),
    then the random state of the checkpoint itself comes back (dropout, augmentation).
    """
    batches = iter(trainer.train_loader)
    collections.deque(itertools.islice(batches, first), maxlen=0)  # consume `first` batches
    progress, trainer.resume_progress = trainer.resume_progress, None
    _set_random_state(progress["now"], trainer.train_loader)
    return batches


def _check_training_state(saved: dict, path) -> None:
    if saved.get("format") == FORMAT:
        return
    if saved and all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise ValueError(
            f"{path} holds model weights only (save_weights_only=True), not a training state: "
            "load it with model.load_state_dict(labpkg.load_checkpoint(path)); to resume "
            "training, checkpoint with save_weights_only=False"
        )
    raise ValueError(
        f"{path} is not a labpkg training checkpoint of this version (format "
        f"{saved.get('format', 1)}, expected {FORMAT}); its weights, if any, are under 'model'"
    )


def _check_optimizer(optimizer, saved: dict, path) -> None:
    name = type(optimizer).__name__
    if saved["optimizer_class"] != name:
        raise ValueError(
            f"{path} holds the state of a {saved['optimizer_class']} optimizer; this trainer's "
            f"is {name}. Resume with the same optimizer (or load only the weights: "
            "model.load_state_dict(labpkg.load_checkpoint(path)['model']))"
        )
    groups = saved["optimizer"]["param_groups"]
    own = [len(g["params"]) for g in optimizer.param_groups]
    if [len(g["params"]) for g in groups] != own:
        raise ValueError(
            f"{path}: the optimizer's parameter groups differ (saved sizes "
            f"{[len(g['params']) for g in groups]}, here {own})"
        )


def _match_callbacks(callbacks, saved: dict[str, dict], path) -> list[tuple[Any, dict]]:
    """Pair each callback with its saved state by key; saved state nobody claims is an error."""
    by_key = {cb.state_key(): cb for cb in callbacks}
    unclaimed = sorted(saved.keys() - by_key.keys())
    if unclaimed:
        raise ValueError(
            f"{path} holds state for callbacks {unclaimed} that this run does not have "
            f"(it has {sorted(by_key)}): pass the same callbacks, or set .key to match"
        )
    return [(by_key[key], state) for key, state in saved.items()]


def _set_random_state(saved: dict, loader) -> None:
    set_rng_state(saved["rng"])
    generator = getattr(loader, "generator", None)
    if generator is not None and saved.get("loader_rng") is not None:
        generator.set_state(saved["loader_rng"])

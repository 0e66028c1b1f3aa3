"""Putting a training checkpoint back: everything is checked first, then loaded, or nothing is.

Two ways in, one meaning (a checkpoint records where training stands, and the next ``fit``
goes on from there; it never trains the saved epochs again):

- ``fit(train, epochs, resume_from=path)`` checks the file against the trainer, the loader and
  the callbacks of this fit, then loads all of it and continues;
- ``trainer.restore(path)`` checks and loads at once what needs no loader (model, optimizer,
  scaler, counters); the next ``fit`` checks its loader and callbacks, loads their part (and
  the random state) and continues from the restored position.

A resume that cannot be exact, because the run's conditions changed (``labpkg.loop.fingerprint``),
is refused with each changed field, its value then and now, and the fix. With ``strict=False``
(``fit(..., strict_resume=False)``) it is accepted with a warning and continues at the next
epoch boundary: the rest of an epoch in progress cannot be told apart under new conditions.
An optimizer of another class is refused either way: its state means something else.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from labpkg.core.checkpoint import check_model_state, load_checkpoint
from labpkg.loop.fingerprint import Difference, differences, fingerprint, optimizer_name, refusal
from labpkg.loop.resume import FORMAT, EpochInProgress, Position, ResumePoint, set_random_state

__all__ = ["PendingResume", "restore_trainer", "resume_fit", "load_training_state"]

ACCEPT = (
    "Or accept a resume that is not exact: fit(..., strict_resume=False) or "
    "trainer.restore(path, strict=False) continues from the next epoch boundary under the new "
    "conditions (the run then differs from an uninterrupted one)."
)


@dataclass
class PendingResume:
    """What ``restore`` loaded no part of yet, kept for the next ``fit`` to check and load.

    Attributes:
        saved: the checkpoint's contents but model and optimizer (loaded already).
        path: the file, named in errors.
        changed: the conditions that differ (accepted with ``strict=False``).
        strict: ``restore``'s ``strict``; the next ``fit``'s ``strict_resume`` adds to it.
    """

    saved: dict[str, Any]
    path: str | os.PathLike
    changed: list[Difference]
    strict: bool


def restore_trainer(trainer: Any, path: str | os.PathLike, strict: bool = True) -> ResumePoint:
    """Check ``path`` against ``trainer``, load model, optimizer, scaler and counters, and keep
    the rest for the next ``fit``, which continues from the returned point."""
    saved = load_training_state(path)
    changed = _check_run(trainer, saved, path, strict)
    _apply_run(trainer, saved, changed)
    trainer.position = Position(**saved["position"])
    rest = {k: v for k, v in saved.items() if k not in ("model", "optimizer")}
    trainer.pending_resume = PendingResume(rest, path, changed, strict)
    return _resume_point(saved, exact=not changed)


def resume_fit(trainer: Any, path, strict: bool, initial_epoch: int) -> ResumePoint:
    """Continue from ``path`` (or, if None, from ``trainer.restore``'s file) in this ``fit``.

    Called after ``on_train_begin``, which resets the callbacks: their saved state lands on
    top of that reset. Everything is checked before anything is loaded.
    """
    if path is not None:
        saved, restored = load_training_state(path), False
        changed = _check_run(trainer, saved, path, strict)
    else:
        pending, restored = trainer.pending_resume, True
        saved, path, changed = pending.saved, pending.path, pending.changed
        strict = strict and pending.strict
    changed = changed + _accept(differences(saved["fingerprint"], fingerprint(trainer), "data"),
                                path, strict)  # fmt: skip
    point = _resume_point(saved, exact=not changed)
    _check_epochs(point, trainer.state.epochs, initial_epoch, path)
    callback_states = _match_callbacks(trainer.callbacks, saved["callbacks"], path)
    if point.batch > 0:
        _check_progress(saved["progress"], trainer, path)
    # everything checked: from here on nothing can fail halfway
    if not restored:
        _apply_run(trainer, saved, changed)
    for callback, state in callback_states:
        callback.load_state_dict(state)
    now = {"rng": saved["rng"], "generators": saved["generators"]}
    set_random_state(now, trainer.train_loader)
    trainer.pending_resume, trainer.epoch_in_progress = None, None
    if point.batch > 0:  # the epoch in progress, put back by its first mini-batch
        progress = saved["progress"]
        trainer.epoch_in_progress = EpochInProgress(
            point.batch, progress["loss_sum"], progress["count"], progress["metrics"],
            progress["grads"], epoch_rng=saved["epoch_rng"], rng_now=now,
        )  # fmt: skip
    return point


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """The training checkpoint at ``path`` (``labpkg.load_checkpoint``), its format checked."""
    saved = load_checkpoint(path)
    if saved.get("format") == FORMAT:
        return saved
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


def _check_run(trainer, saved: dict, path, strict: bool) -> list[Difference]:
    """What needs no loader: model keys and shapes, optimizer, the run's conditions."""
    check_model_state(trainer.model, saved["model"])
    _check_optimizer(trainer.optimizer, saved, path)
    return _accept(differences(saved["fingerprint"], fingerprint(trainer), "run"), path, strict)


def _accept(changed: list[Difference], path, strict: bool) -> list[Difference]:
    """Refuse changed conditions (``strict``), or warn that the resume will not be exact."""
    if changed and strict:
        raise ValueError(refusal(path, changed, ACCEPT))
    if changed:
        warnings.warn(
            refusal(path, changed, "strict=False: continuing from the next epoch boundary"),
            stacklevel=4,
        )
    return changed


def _check_optimizer(optimizer, saved: dict, path) -> None:
    name, kept = optimizer_name(optimizer), saved["fingerprint"]["run"]["optimizer"]
    if kept != name:  # refused even with strict=False: the state cannot be loaded at all
        raise ValueError(refusal(path, [Difference("optimizer", kept, name)], None))
    groups = saved["optimizer"]["param_groups"]
    own = [len(g["params"]) for g in optimizer.param_groups]
    if [len(g["params"]) for g in groups] != own:
        raise ValueError(
            f"{path}: the optimizer's parameter groups differ (saved sizes "
            f"{[len(g['params']) for g in groups]}, here {own})"
        )


def _apply_run(trainer, saved: dict, changed: list[Difference]) -> None:
    trainer.model.load_state_dict(saved["model"])
    trainer.optimizer.load_state_dict(saved["optimizer"])
    if not any(d.field == "amp" for d in changed):  # another precision: a fresh GradScaler
        trainer.scaler.load_state_dict(saved["scaler"])
    trainer.state.load_state_dict(saved["state"])


def _resume_point(saved: dict, exact: bool) -> ResumePoint:
    point = Position(**saved["position"]).next()
    if exact or point.batch == 0:
        return point
    return ResumePoint(point.epoch + 1, 0)  # inexact: the epoch in progress stays unfinished


def _check_epochs(point: ResumePoint, epochs: int, initial_epoch: int, path) -> None:
    """A checkpoint past ``epochs`` is an error: resuming would train nothing and return a
    model trained longer than asked, which a warning in a long log would hide."""
    if point.epoch > epochs or (point.epoch == epochs and point.batch > 0):
        where = f"epoch {point.epoch + 1}"
        if point.batch > 0:
            where += f", mini-batch {point.batch + 1}"
        raise ValueError(
            f"{path} continues at {where} (1-based), past fit(epochs={epochs}): it was trained "
            f"further than this fit asks. Pass epochs > {point.epoch} to train on from it, or "
            "resume from an earlier checkpoint"
        )
    if initial_epoch not in (0, point.epoch):
        raise ValueError(
            f"initial_epoch={initial_epoch} contradicts {path}, which continues at epoch "
            f"{point.epoch} (0-based): leave initial_epoch out when resuming"
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


def _check_progress(progress: dict, trainer, path) -> None:
    if len(progress["metrics"]) != len(trainer.metrics):
        raise ValueError(
            f"{path} was taken mid-epoch with {len(progress['metrics'])} metrics; this trainer "
            f"has {len(trainer.metrics)}: pass the same metrics to resume"
        )
    for metric, state in zip(trainer.metrics, progress["metrics"], strict=True):
        # a trial load on a copy: a metric that refuses its state (another num_classes)
        # refuses it now, before the weights are overwritten, not at the first mini-batch
        copy.deepcopy(metric).load_state_dict(state)

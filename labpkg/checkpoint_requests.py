"""The checkpoints callbacks ask for, written once every callback has run the hook.

``ModelCheckpoint`` does not write its file itself: it asks (``request``), and the Trainer
writes every requested file after the last callback has run the hook (``flush``), so the file
holds the state of every callback, whatever their order. A request left over by a hook that
an exception cut short is dropped (``drop``), never written later with another position.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from labpkg import distributed
from labpkg.checkpoint import save_checkpoint
from labpkg.checks import is_finite
from labpkg.resume import Position, trainer_state

__all__ = ["Checkpoints"]


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
        state = self.trainer.state
        position = Position(state.epoch, state.batch, complete)
        for path, weights_only, extra, on_saved in pending:
            if weights_only:
                save_checkpoint(self.trainer.model.state_dict(), path)
            else:
                save_checkpoint({**trainer_state(self.trainer, position), **extra}, path)
            if on_saved is not None:
                on_saved()

    def drop(self) -> None:
        """Forget requests whose hook did not finish (an exception or a Ctrl-C inside it).

        Such a file would hold callbacks that had not all run the hook; written at a later
        flush it would also name the wrong position. The files written before stay.
        """
        if self.pending:
            paths = [path for path, *_ in self.pending]
            self.pending = []
            warnings.warn(
                f"not saving {paths}: the hook that asked for them was interrupted; the files "
                "written before stay as they were",
                stacklevel=3,
            )

    def _healthy(self) -> bool:
        state = self.trainer.state
        if not state.diverged:
            state.diverged = not is_finite(self.trainer.running_loss.sum, self.trainer.model)
        return not state.diverged

    def _warn_diverged(self, paths: list[str]) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"training diverged (a NaN or infinite loss or weight): not saving {paths}; "
                "the files written before stay as they were",
                stacklevel=3,
            )

"""The queue of checkpoints callbacks ask for, written once every callback has run the hook.

``ModelCheckpoint`` does not write its file itself: it asks (``request``), and the Trainer's
loop writes every requested file after the last callback has run the hook (``write``, a
visible line after ``on_train_batch_end`` and after ``on_epoch_end``), so the file holds the
state of every callback, whatever their order. The file is written then; the wait for the
disk and the rename happen on a background thread while training goes on, and ``fit`` waits
for them before it returns (``finish``). A request left over by a hook that an
exception cut short is dropped (``drop``), never written later with another position.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from labpkg.core import distributed
from labpkg.core.checkpoint import finish_writes, save_checkpoint
from labpkg.loop.resume import Position, training_state

__all__ = ["CheckpointQueue"]


class CheckpointQueue:
    """The checkpoints callbacks ask for, written once every callback has run the hook.

    ``ModelCheckpoint`` calls ``request`` in its ``on_epoch_end`` (or ``on_train_batch_end``);
    the Trainer calls ``write`` after *all* callbacks have run that hook, so a checkpoint
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
        """Ask for a checkpoint at ``path`` at the end of the current hook (with
        ``weights_only``, the model's ``state_dict`` alone; ``extra``: more keys to save;
        ``on_saved``: called once the file is written)."""
        self.pending.append((os.fspath(path), weights_only, extra or {}, on_saved))

    def write(self, complete: bool) -> None:
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
                state = self.trainer.model.state_dict()
            else:
                state = {**training_state(self.trainer, position), **extra}
            save_checkpoint(state, path, background=True)  # fsync and rename meanwhile
            if on_saved is not None:
                on_saved()

    def finish(self, error: BaseException | None = None) -> None:
        """Wait for the file being finished in the background (``fit`` calls this as it ends).

        Its error is raised; while ``error`` ends the fit instead, a warning reports it.
        """
        try:
            finish_writes()
        except Exception as write_error:
            if error is None:
                raise
            warnings.warn(f"writing a checkpoint failed as well: {write_error!r}", stacklevel=3)

    def drop(self) -> None:
        """Forget requests whose hook did not finish (an exception or a Ctrl-C inside it).

        Such a file would hold callbacks that had not all run the hook; written at a later
        ``write`` it would also name the wrong position. The files written before stay.
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
        trainer = self.trainer
        if trainer.state.diverged:
            return False
        loss = trainer.running_loss.sum
        return not trainer.state.check_divergence(loss, trainer.model.parameters())

    def _warn_diverged(self, paths: list[str]) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"training diverged (a NaN or infinite loss or weight): not saving {paths}; "
                "the files written before stay as they were",
                stacklevel=3,
            )

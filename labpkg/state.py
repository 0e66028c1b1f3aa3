"""``TrainState``: the counters that *are* the book's definitions of epoch, mini-batch, update."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainState"]


@dataclass
class TrainState:
    """Where training is. Counters are 0-based in code; the book prints them 1-based.

    A **mini-batch** is one forward and backward pass; an **update** (also called an
    *iteration* or a *step*) is one ``optimizer.step()``. With ``accumulate_grad_batches=k``
    an update follows every k mini-batches (and the last, smaller group of an epoch).

    Attributes:
        epoch (int): the epoch in progress (0 for the first).
        batch (int): index of the mini-batch in progress within the epoch (0 for the first).
        global_step (int): updates so far in the run, never reset (0 before the first). Every
            accumulation group counts, also one whose step the GradScaler skipped because its
            float16 gradients overflowed: ``global_step`` follows the data, so it always equals
            ``labpkg.total_updates(...)`` for the epochs run.
        skipped_updates (int): how many of those updates the GradScaler skipped (float16 only;
            the weights did not move). Applied updates = ``global_step - skipped_updates``.
        batches_seen (int): mini-batches forwarded so far in the run.
        samples_seen (int): training samples forwarded so far in the run (this process).
        batches_per_epoch (int): mini-batches per epoch: ``steps_per_epoch`` if given (Keras
            calls mini-batches "steps" there), else ``len(loader)``.
        epochs (int): the ``epochs`` argument of the current ``fit``.
        stop_training (bool): set by a callback to end training after the current mini-batch
            or epoch.
        interrupted (bool): True if the last ``fit`` ended by KeyboardInterrupt.
        diverged (bool): the current epoch's loss or weights are not finite (NaN or inf): it
            cannot count as best, and no checkpoint is written from it.
    """

    epoch: int = 0
    batch: int = 0
    global_step: int = 0
    skipped_updates: int = 0
    batches_seen: int = 0
    samples_seen: int = 0
    batches_per_epoch: int = 0
    epochs: int = 0
    stop_training: bool = False
    interrupted: bool = False
    diverged: bool = False

"""``TrainState``: the counters that *are* the book's definitions of epoch, mini-batch, update."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["TrainState"]

#: What a checkpoint keeps: the run's totals, and whether a callback had asked to stop.
SAVED = ("global_step", "skipped_updates", "batches_seen", "samples_seen", "stop_training")


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
        batches_per_epoch (int): mini-batches per epoch: ``fit(batches_per_epoch=...)`` if
            given, else ``len(loader)``.
        epochs (int): the ``epochs`` argument of the current ``fit``.
        stop_training (bool): set by a callback to end training after the current mini-batch
            or epoch.
        interrupted (bool): True if the last ``fit`` ended by KeyboardInterrupt.
        diverged (bool): the current epoch's loss or weights are not finite (NaN or inf): it
            cannot count as best, and no checkpoint is written from it. Set only by
            ``check_divergence``.
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

    def start_fit(self, epochs: int, batches_per_epoch: int) -> None:
        """A new ``fit``: its length, and no stop, interrupt or divergence yet."""
        self.epochs, self.batches_per_epoch = epochs, batches_per_epoch
        self.stop_training = self.interrupted = self.diverged = False

    def check_divergence(
        self, loss: float | torch.Tensor, params: Iterable[torch.Tensor] = ()
    ) -> bool:
        """Set and return ``diverged``: ``loss`` or one of ``params`` holds a NaN or an inf.

        One host read for all of them (the weights are checked on their device).
        """
        finite = [p.detach().isfinite().all() for p in params]
        device = finite[0].device if finite else None
        finite.append(torch.as_tensor(loss, device=device).isfinite())
        self.diverged = not bool(torch.stack(finite).all())
        return self.diverged

    def state_dict(self) -> dict[str, Any]:
        """The counters a checkpoint keeps (plain numbers: ``weights_only`` loads them)."""
        return {key: getattr(self, key) for key in SAVED}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what ``state_dict`` returned."""
        missing = sorted(set(SAVED) - state.keys())
        if missing:
            raise ValueError(f"the saved training state lacks the counters {missing}")
        for key in SAVED:
            setattr(self, key, state[key])

"""``TrainState``: the counters that *are* the book's definitions of epoch, batch and step."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainState"]


@dataclass
class TrainState:
    """Where training is. Counters are 0-based in code; the book prints them 1-based.

    Attributes:
        epoch (int): the epoch in progress (0 for the first).
        batch (int): index of the mini-batch in progress within the epoch (0 for the first).
        global_step (int): optimizer updates so far in the run (never reset; 0 before the first).
        batches_seen (int): mini-batches forwarded so far in the run.
        samples_seen (int): training samples forwarded so far in the run (this process).
        epoch_length (int): mini-batches per epoch (``steps_per_epoch``, else ``len(loader)``).
        epochs (int): the ``epochs`` argument of the current ``fit``.
        stop_training (bool): set by a callback to end training after the current batch or epoch.
        interrupted (bool): True if the last ``fit`` ended by KeyboardInterrupt.
    """

    epoch: int = 0
    batch: int = 0
    global_step: int = 0
    batches_seen: int = 0
    samples_seen: int = 0
    epoch_length: int = 0
    epochs: int = 0
    stop_training: bool = False
    interrupted: bool = False

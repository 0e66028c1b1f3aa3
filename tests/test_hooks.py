"""The exact sequence of hooks and counters, for every shape of run (spec §2.1, T1).

``expected_events`` is an independent, plain-Python statement of the loop the book teaches;
each test runs the real Trainer with a recording callback and compares the whole sequence.

Where ``stop_training`` takes effect: the loop checks it once before the first epoch, after
every mini-batch (after ``on_train_batch_end``) and after every epoch (after ``on_epoch_end``).
A stop during validation lets validation and ``on_epoch_end`` finish. A stop in the middle of
an accumulation group makes no update from the partial group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from helpers import Event, Recorder, loader, tiny_data, tiny_trainer

import labpkg

BATCH = 4


@dataclass(frozen=True)
class Run:
    n: int = 12  # training samples (mini-batches of BATCH, the last may be smaller)
    epochs: int = 2
    accumulate: int = 1
    val_n: int = 4  # 0: no validation
    validation_freq: int | tuple[int, ...] = 1  # a tuple: the 1-based epochs, as Keras
    initial_epoch: int = 0
    batches_per_epoch: int | None = None
    stop: tuple[str, int | None, int | None] | None = None  # (hook, epoch, batch)


def expected_events(run: Run) -> list[Event]:
    """The loop, written out: what every hook should see."""
    sizes = [min(BATCH, run.n - start) for start in range(0, run.n, BATCH)]
    per_epoch = run.batches_per_epoch or len(sizes)
    val_batches = math.ceil(run.val_n / BATCH)
    events: list[Event] = []
    step = batches = samples = 0
    stopped = False

    def emit(hook: str, epoch: int | None, batch: int | None = None) -> None:
        nonlocal stopped
        events.append(Event(hook, epoch, batch, step, batches, samples))
        stopped = stopped or run.stop == (hook, epoch, batch)

    emit("train_begin", None)
    for epoch in range(run.initial_epoch, run.epochs):
        if stopped:
            break
        emit("epoch_begin", epoch)
        for b in range(per_epoch):
            emit("batch_begin", epoch, b)
            batches, samples = batches + 1, samples + sizes[b]
            if (b + 1) % run.accumulate == 0 or b + 1 == per_epoch:
                emit("after_backward", epoch, b)  # once per update, before it counts
                emit("before_optimizer_step", epoch, b)
                step += 1
                emit("update_end", epoch, b)  # once per update, after it counts
            emit("batch_end", epoch, b)
            if stopped:
                break
        freq = run.validation_freq
        listed = epoch + 1 in freq if isinstance(freq, tuple) else (epoch + 1) % freq == 0
        if run.val_n and listed:
            emit("test_begin", epoch)
            for vb in range(val_batches):
                emit("test_batch_begin", epoch, vb)
                emit("test_batch_end", epoch, vb)
            emit("test_end", epoch)
        emit("epoch_end", epoch)
    emit("train_end", None)
    return events


class StopAt(labpkg.Callback):
    """Sets ``stop_training`` at one hook call, given as (hook, epoch, batch)."""

    def __init__(self, hook: str, epoch: int | None, batch: int | None) -> None:
        super().__init__()
        self.at = (hook, epoch, batch)

    def _check(self, hook: str, batch: int | None = None) -> None:
        epoch = None if hook == "train_begin" else self.trainer.state.epoch
        if (hook, epoch, batch) == self.at:
            self.trainer.state.stop_training = True

    def on_train_begin(self, logs=None):
        self._check("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self._check("epoch_begin")

    def on_train_batch_begin(self, batch, logs=None):
        self._check("batch_begin", batch)

    def on_train_batch_end(self, batch, logs=None):
        self._check("batch_end", batch)

    def on_test_begin(self, logs=None):
        self._check("test_begin")

    def on_test_batch_begin(self, batch, logs=None):
        self._check("test_batch_begin", batch)

    def on_test_batch_end(self, batch, logs=None):
        self._check("test_batch_end", batch)

    def on_test_end(self, logs=None):
        self._check("test_end")

    def on_after_backward(self, batch, logs=None):
        self._check("after_backward", batch)

    def on_before_optimizer_step(self, batch, logs=None):
        self._check("before_optimizer_step", batch)

    def on_update_end(self, step, logs=None):
        self._check("update_end", self.trainer.state.batch)

    def on_epoch_end(self, epoch, logs=None):
        self._check("epoch_end")


class GradientRecorder(Recorder):
    """Also records the two gradient hooks and the update hook."""

    def on_after_backward(self, batch, logs=None):
        self._note("after_backward", batch)

    def on_before_optimizer_step(self, batch, logs=None):
        self._note("before_optimizer_step", batch)

    def on_update_end(self, step, logs=None):
        assert step == self.trainer.state.global_step  # the update just counted
        self._note("update_end", self.trainer.state.batch)


def _record(run: Run) -> list[Event]:
    recorder = GradientRecorder()
    callbacks: list[labpkg.Callback] = [recorder]
    if run.stop is not None:
        callbacks.insert(0, StopAt(*run.stop))  # before the recorder: it sees the same state
    trainer = tiny_trainer(accumulate_grad_batches=run.accumulate)
    trainer.fit(
        loader(tiny_data(run.n), batch_size=BATCH),
        epochs=run.epochs,
        validation_data=loader(tiny_data(run.val_n), batch_size=BATCH) if run.val_n else None,
        callbacks=callbacks,
        initial_epoch=run.initial_epoch,
        batches_per_epoch=run.batches_per_epoch,
        validation_freq=run.validation_freq,
        verbose=0,
    )
    return recorder.events


RUNS = {
    "T1: 2 epochs x 3 batches": Run(),
    "accumulation 2 with a remainder group": Run(n=18, accumulate=2, epochs=2),
    "accumulation 3, epoch of 10 mini-batches": Run(n=40, accumulate=3, epochs=2, val_n=0),
    "validation every 2nd epoch": Run(epochs=4, validation_freq=2, val_n=6),
    "validation after epochs 1 and 3 only": Run(epochs=4, validation_freq=(1, 3), val_n=6),
    "initial_epoch 2 of 4": Run(epochs=4, initial_epoch=2),
    "batches_per_epoch 2 of 5, accumulation 3": Run(n=20, batches_per_epoch=2, accumulate=3),
    "no validation": Run(val_n=0, epochs=3),
}


@pytest.mark.parametrize("run", RUNS.values(), ids=RUNS.keys())
def test_hook_sequence_and_counters_match_the_loop_as_written(run):
    assert _record(run) == expected_events(run)


STOPS = [
    ("train_begin", None, None),
    ("epoch_begin", 1, None),
    ("batch_begin", 0, 1),
    ("batch_end", 1, 0),
    ("after_backward", 0, 1),
    ("before_optimizer_step", 1, 3),
    ("update_end", 0, 3),
    ("test_begin", 0, None),
    ("test_batch_begin", 0, 1),
    ("test_batch_end", 1, 0),
    ("test_end", 0, None),
    ("epoch_end", 0, None),
]


@pytest.mark.parametrize("stop", STOPS, ids=lambda s: f"{s[0]} e{s[1]} b{s[2]}")
@pytest.mark.parametrize("accumulate", [1, 2])
def test_stop_training_from_any_hook_ends_training_cleanly_after_it(stop, accumulate):
    run = Run(n=20, epochs=3, val_n=8, accumulate=accumulate, stop=stop)
    events = _record(run)
    assert events == expected_events(run)
    assert events[-1].hook == "train_end"
    assert len(events) < len(expected_events(Run(n=20, epochs=3, val_n=8)))  # it did stop


def test_the_book_example_counts_mini_batches_and_updates_by_their_names():
    # n=40, batch 4, accumulate 3, 2 epochs: 10 mini-batches and 4 updates per epoch, 8 in all
    trainer = tiny_trainer(accumulate_grad_batches=3)
    trainer.fit(loader(tiny_data(40), batch_size=4), epochs=2, verbose=0)
    state = trainer.state
    assert state.batches_per_epoch == 10 == labpkg.batches_per_epoch(40, 4)
    assert labpkg.updates_per_epoch(40, 4, accumulate=3) == 4
    assert state.global_step == 8 == labpkg.total_updates(40, 4, epochs=2, accumulate=3)
    assert state.batches_seen == 20

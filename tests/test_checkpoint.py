"""Checkpoints: atomic writes, safe loads, exact resume."""

from __future__ import annotations

import errno
import os
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch
from helpers import loader, run_python, tiny_data, tiny_model, tiny_trainer

import labpkg
from labpkg.callbacks import ModelCheckpoint
from labpkg.core.checkpoint import (
    finish_writes,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_d2_round_trip_of_tensors_ints_and_floats(tmp_path):
    path = save_checkpoint({"w": torch.arange(3), "step": 7, "lr": 0.5}, tmp_path / "c.pt")
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["w"], torch.arange(3)) and (loaded["step"], loaded["lr"]) == (7, 0.5)


def test_d2_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"value": np.float64(1.0)}, path)
    with pytest.raises(ValueError, match="refused"):
        load_checkpoint(path)


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_write_killed_midway_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"version": 1, "w": torch.ones(10)}, path)
    script = textwrap.dedent(f"""
        import os, signal, torch
        from labpkg.core.checkpoint import save_checkpoint
        real_save = torch.save
        def dying_save(obj, f):
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-write
        torch.save = dying_save
        save_checkpoint({{"version": 2}}, {str(path)!r})
    """)
    proc = run_python("-c", script)
    assert proc.returncode == -9
    loaded = load_checkpoint(path)
    assert loaded["version"] == 1 and torch.equal(loaded["w"], torch.ones(10))


def test_failed_write_removes_its_temporary_file(tmp_path, monkeypatch):
    def failing_save(obj, f):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"a": 1}, tmp_path / "c.pt")
    assert os.listdir(tmp_path) == []


def test_rng_state_round_trip_restores_every_generator(tmp_path):
    import random

    save_checkpoint({"rng": rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(3), random.random(), np.random.rand())  # noqa: NPY002
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert (random.random(), np.random.rand()) == expected[1:]  # noqa: NPY002


def test_checkpoint_from_a_different_model_names_the_keys(tmp_path):
    trainer = tiny_trainer()
    trainer.save_training_state(str(tmp_path / "c.pt"))
    other = tiny_trainer(labpkg.UNet(labpkg.UNetConfig(num_classes=3, base_width=4, depth=3)))
    with pytest.raises(ValueError, match="different model: missing keys"):
        other.restore(str(tmp_path / "c.pt"))


def test_model_checkpoint_weights_only_loads_with_weights_only(tmp_path):
    trainer = tiny_trainer()
    ckpt = ModelCheckpoint(str(tmp_path / "w.pt"), save_weights_only=True, monitor="loss")
    trainer.fit(loader(tiny_data(8)), epochs=1, callbacks=[ckpt], verbose=0)
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    expected = trainer.model.state_dict()
    assert state.keys() == expected.keys()  # the weights alone, not a training state
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    model = tiny_model(seed=9)  # other weights, replaced by the file's
    model.load_state_dict(state)
    assert torch.equal(model.head.weight, trainer.model.head.weight)


def test_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    trainer = tiny_trainer()
    with pytest.raises(ValueError, match="ModelCheckpoint cannot write"):
        trainer.fit(
            loader(tiny_data(8)), callbacks=[ModelCheckpoint(str(blocker / "c.pt"))], verbose=0
        )
    assert trainer.state.global_step == 0


def test_a_resumed_run_returns_a_history_of_the_epochs_it_trained(tmp_path):
    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"))
    first = tiny_trainer().fit(loader(tiny_data(8)), epochs=2, callbacks=[ckpt], verbose=0)
    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"))
    rest = tiny_trainer().fit(
        loader(tiny_data(8)),
        epochs=4,
        callbacks=[ckpt],
        verbose=0,
        resume_from=tmp_path / "last.pt",
    )
    assert first.epoch == [0, 1] and rest.epoch == [2, 3]


# ------------------------------------------------ a ModelCheckpoint's file is the one it promises
def test_two_model_checkpoints_on_one_path_are_refused_before_training(tmp_path):
    best = ModelCheckpoint(str(tmp_path / "c.pt"), monitor="loss", save_best_only=True)
    last = ModelCheckpoint(str(tmp_path / "c.pt"))
    best.key = "best"  # what the shared-key error advises
    trainer = tiny_trainer()
    with pytest.raises(ValueError, match="two ModelCheckpoints write"):
        trainer.fit(loader(tiny_data(8)), 2, callbacks=[best, last], verbose=0)
    assert trainer.state.global_step == 0


def test_save_best_only_skips_epochs_that_were_not_validated(tmp_path):
    best = ModelCheckpoint(str(tmp_path / "{epoch}.pt"), save_best_only=True)
    data = loader(tiny_data(8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "val_loss missing" warning either
        tiny_trainer().fit(data, 4, validation_data=data, validation_freq=2, callbacks=[best],
                           verbose=0)  # fmt: skip
    assert {p.name for p in tmp_path.iterdir()} <= {"2.pt", "4.pt"}  # validated epochs only
    assert labpkg.load_checkpoint(best.best_path)["position"]["epoch"] in (1, 3)


def test_a_folder_named_by_the_template_is_made_at_save_time(tmp_path):
    ckpt = ModelCheckpoint(str(tmp_path / "runs" / "{epoch}" / "ckpt.pt"))
    tiny_trainer().fit(loader(tiny_data(8)), 2, callbacks=[ckpt], verbose=0)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["1", "2"]


@pytest.mark.parametrize("template", ["{loss:d}.pt", "{}.pt", "{epoch:.2q}.pt", "c{.pt"])
def test_a_template_that_cannot_be_formatted_fails_before_training(tmp_path, template):
    trainer = tiny_trainer()
    ckpt = ModelCheckpoint(str(tmp_path / template), monitor="loss")
    with pytest.raises(ValueError, match="ModelCheckpoint filepath"):
        trainer.fit(loader(tiny_data(8)), 2, callbacks=[ckpt], verbose=0)
    assert trainer.state.global_step == 0


# --------------------------------------------------- an optimizer loads only its own rule's state
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_labpkg_optimizers_refuse_torch_optimizer_state(name):
    w = torch.nn.Parameter(torch.ones(3))
    options = {"momentum": 0.9} if name == "SGD" else {}
    theirs = getattr(torch.optim, name)([w], lr=0.1, **options)
    w.grad = torch.ones(3)
    theirs.step()  # momentum_buffer / exp_avg, exp_avg_sq, step
    ours = getattr(labpkg.optim, name)([w], lr=0.1, **options)
    with pytest.raises(ValueError, match="does not keep"):
        ours.load_state_dict(theirs.state_dict())
    assert not ours.state  # nothing loaded


def test_save_checkpoint_from_a_callback_during_fit_is_refused(tmp_path):
    class SavesItself(labpkg.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.trainer.save_training_state(str(tmp_path / "c.pt"))

    with pytest.raises(RuntimeError, match="checkpoint_queue.request"):
        tiny_trainer().fit(loader(tiny_data(8)), 1, callbacks=[SavesItself()], verbose=0)


def test_an_integer_save_freq_counts_updates_so_no_save_falls_inside_a_group(tmp_path):
    trainer = tiny_trainer(accumulate_grad_batches=2)
    asked_at = []  # the mini-batch after which ModelCheckpoint asks for a file
    trainer.checkpoint_queue.request = lambda path, **_: asked_at.append(trainer.state.batch)
    every_update = ModelCheckpoint(str(tmp_path / "c.pt"), save_freq=1)
    # 4 mini-batches per epoch, an update after the 2nd and the 4th
    trainer.fit(loader(tiny_data(16), batch_size=4), 2, callbacks=[every_update], verbose=0)
    assert asked_at == [1, 3, 1, 3]


# ------------------------------------------- checkpoints written behind training (background)
def slow_fsync(monkeypatch, seconds: float = 0.2, fail_on: int | None = None) -> list:
    """os.fsync that takes ``seconds`` (and raises EIO on call ``fail_on``): a disk still
    busy with one checkpoint when training goes on."""
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        time.sleep(seconds)
        if len(calls) == fail_on:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_background_save_writes_the_values_of_the_moment_it_was_asked(tmp_path, monkeypatch):
    slow_fsync(monkeypatch)
    weights = torch.zeros(3)
    save_checkpoint({"w": weights, "steps": [1]}, tmp_path / "c.pt", background=True)
    weights.add_(1)  # training goes on while the file is written
    assert torch.equal(load_checkpoint(tmp_path / "c.pt")["w"], torch.zeros(3))


def test_background_saves_land_in_the_order_they_were_asked(tmp_path, monkeypatch):
    slow_fsync(monkeypatch)
    for step in range(3):
        save_checkpoint({"step": step}, tmp_path / "c.pt", background=True)
    save_checkpoint({"step": 3}, tmp_path / "d.pt")  # a plain save waits for the one before
    assert (tmp_path / "c.pt").exists()
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 2


def test_a_failed_background_write_raises_at_the_next_save_and_keeps_the_old_file(
    tmp_path, monkeypatch
):
    save_checkpoint({"step": 0}, tmp_path / "c.pt")
    slow_fsync(monkeypatch, fail_on=1)
    save_checkpoint({"step": 1}, tmp_path / "c.pt", background=True)
    with pytest.raises(OSError, match="Input/output error"):
        save_checkpoint({"step": 2}, tmp_path / "c.pt", background=True)
    finish_writes()  # the error was raised once; nothing is pending now
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file


def test_fit_returns_once_the_last_checkpoint_is_on_disk(tmp_path, monkeypatch):
    slow_fsync(monkeypatch)
    trainer = tiny_trainer()
    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"), monitor="loss")
    trainer.fit(loader(tiny_data(8)), 2, callbacks=[ckpt], verbose=0)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    saved = torch.load(tmp_path / "last.pt", weights_only=True)  # no wait: plain torch.load
    assert saved["state"]["global_step"] == trainer.state.global_step == 4


def test_a_checkpoint_write_that_fails_during_fit_raises_from_fit(tmp_path, monkeypatch):
    calls = slow_fsync(monkeypatch, seconds=0.0, fail_on=2)
    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"), monitor="loss")
    with pytest.raises(OSError, match="Input/output error"):
        tiny_trainer().fit(loader(tiny_data(8)), 3, callbacks=[ckpt], verbose=0)
    assert len(calls) == 2  # epoch 2's write failed; epoch 3's was not begun
    assert load_checkpoint(tmp_path / "last.pt")["state"]["global_step"] == 2  # epoch 1's file


def test_an_error_in_training_is_raised_over_a_failed_write_which_is_warned(tmp_path, monkeypatch):
    slow_fsync(monkeypatch, fail_on=1)

    class FailsAfterTheFirstSave(labpkg.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.trainer.state.epoch == 1:
                raise RuntimeError("a bug in a callback")

    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"), monitor="loss")
    callbacks = [ckpt, FailsAfterTheFirstSave()]
    warned = pytest.warns(UserWarning, match="writing a checkpoint failed as well")
    with warned, pytest.raises(RuntimeError, match="a bug in a callback"):
        tiny_trainer().fit(loader(tiny_data(8)), 3, callbacks=callbacks, verbose=0)
    assert not (tmp_path / "last.pt").exists()

"""Nothing lost: resume is exact whatever the callback order and wherever the checkpoint was taken.

Each case runs three times with the same seeds: straight through; interrupted at a point;
resumed from the last checkpoint the interrupted run wrote. The resumed run must end where the
straight one did, bit for bit: weights, optimizer, counters, callback state, the CSV log.
"""

from __future__ import annotations

import math
import os
import signal
import warnings
from pathlib import Path

import pytest
import torch
from helpers import loader, tiny_data, tiny_model, tiny_trainer
from hypothesis import given
from hypothesis import strategies as st

import labpkg
from labpkg.callbacks import (
    CSVLogger,
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)

N, BATCH, EPOCHS = 20, 4, 4  # 5 mini-batches per epoch


class InterruptAt(labpkg.Callback):
    """Interrupts before mini-batch ``batch`` of ``epoch``: raises KeyboardInterrupt there (as
    a notebook's stop button), or with ``signal=True`` sends SIGINT (as Ctrl-C), which fit
    holds until the end of that mini-batch."""

    def __init__(self, epoch: int, batch: int, signal: bool = False) -> None:
        super().__init__()
        self.at, self.signal = (epoch, batch), signal

    def on_train_batch_begin(self, batch, logs=None):
        if (self.trainer.state.epoch, batch) == self.at:
            if not self.signal:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)  # the signal arrives mid-mini-batch


def make_callbacks(order: list[str], folder: Path, trainer, save_freq="epoch") -> list:
    made = {
        "checkpoint": lambda: ModelCheckpoint(str(folder / "last.pt"), save_freq=save_freq),
        "early": lambda: EarlyStopping(monitor="loss", patience=1, min_delta=0.02),
        "plateau": lambda: ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0),
        "schedule": lambda: LRSchedulerCallback(
            torch.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=3, gamma=0.7),
            interval="step",
        ),
        "csv": lambda: CSVLogger(str(folder / "log.csv")),
    }
    return [made[name]() for name in order]


#: The conditions every run trains under unless a test changes one.
SAME = {"batch_size": BATCH, "n": N, "shuffle": True, "drop_last": False, "generator": False,
        "batches_per_epoch": None, "optimizer": torch.optim.SGD, "amp_dtype": None}  # fmt: skip


def run(order, folder, accumulate=1, save_freq="epoch", interrupt=None, resume=False,
        ctrl_c=None, strict=True, **changed):  # fmt: skip
    c = {**SAME, **changed}
    model = tiny_model(seed=7, batch_norm=True)  # the same model in every run
    # the same data order and dropout in every run from the start; a resumed run starts from
    # another global random state, which the checkpoint must put back
    torch.manual_seed(123 if resume else 0)
    trainer = labpkg.Trainer(
        model,
        c["optimizer"](model.parameters(), lr=0.3, momentum=0.9),
        "cross_entropy",
        metrics=[labpkg.MeanIoU(3)],
        device="cpu",
        accumulate_grad_batches=accumulate,
        amp=c["amp_dtype"] is not None,
        amp_dtype=c["amp_dtype"],
    )
    callbacks = make_callbacks(order, folder, trainer, save_freq)
    if interrupt is not None:
        callbacks.append(InterruptAt(*interrupt))
    if ctrl_c is not None:
        callbacks.append(InterruptAt(*ctrl_c, signal=True))
    generator = torch.Generator().manual_seed(5) if c["generator"] else None
    data = loader(tiny_data(c["n"]), batch_size=c["batch_size"], shuffle=c["shuffle"],
                  drop_last=c["drop_last"], generator=generator)  # fmt: skip
    resume_from = folder / "last.pt" if resume else None
    options = {} if strict else {"strict_resume": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = trainer.fit(data, EPOCHS, callbacks=callbacks, verbose=0, resume_from=resume_from,
                              batches_per_epoch=c["batches_per_epoch"], **options)  # fmt: skip
    # an interrupted run says so (EarlyStopping may end a run before its interrupt point)
    said = any("interrupted" in str(w.message) for w in caught)
    assert said == trainer.state.interrupted
    assert interrupt is not None or ctrl_c is not None or not said
    trainer.caught = [str(w.message) for w in caught]
    return trainer, callbacks, history


def assert_same_run(a, b, folder_a: Path, folder_b: Path) -> None:
    (ta, ca, _), (tb, cb, _) = a, b
    for (name, x), y in zip(
        ta.model.state_dict().items(), tb.model.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
    for pa, pb in zip(ta.model.parameters(), tb.model.parameters(), strict=True):
        assert torch.equal(
            ta.optimizer.state[pa]["momentum_buffer"], tb.optimizer.state[pb]["momentum_buffer"]
        )
    assert ta.optimizer.param_groups[0]["lr"] == tb.optimizer.param_groups[0]["lr"]
    for key in ("global_step", "batches_seen", "samples_seen", "stop_training"):
        assert getattr(ta.state, key) == getattr(tb.state, key), key
    for x, y in zip(ca, cb, strict=False):
        assert _comparable(x.state_dict()) == _comparable(y.state_dict()), type(x).__name__
    if (folder_a / "log.csv").exists():
        assert (folder_a / "log.csv").read_text() == (folder_b / "log.csv").read_text()


def _comparable(state):
    if isinstance(state, dict):
        return {k: _comparable(v) for k, v in state.items() if k != "best_path"}
    if isinstance(state, torch.Tensor):
        return state.tolist()
    if isinstance(state, float) and math.isnan(state):
        return "nan"
    return state


def straight_interrupted_resumed(tmp_path, order, interrupt, **options):
    straight_dir, broken_dir = tmp_path / "straight", tmp_path / "broken"
    straight = run(order, straight_dir, **options)
    assert run(order, broken_dir, interrupt=interrupt, **options)[0].state.interrupted
    resumed = run(order, broken_dir, resume=True, **options)
    assert_same_run(straight, resumed, straight_dir, broken_dir)
    return straight, resumed


ORDERS = {
    "checkpoint first (Keras's usual order)": ["checkpoint", "early", "plateau", "csv"],
    "checkpoint last": ["early", "plateau", "csv", "checkpoint"],
    "step scheduler before the checkpoint": ["schedule", "checkpoint", "csv"],
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_resume_equals_a_straight_run_whatever_the_callback_order(tmp_path, order):
    straight_interrupted_resumed(tmp_path, order, interrupt=(2, 2))


def test_a_mid_epoch_checkpoint_resumes_at_the_next_mini_batch(tmp_path):
    # save every 3 mini-batches; the last save before the interrupt is after mini-batch 12,
    # i.e. epoch 2 (0-based), batch 1: the resumed run must run batch 2 of epoch 2 next
    straight, resumed = straight_interrupted_resumed(
        tmp_path, ["checkpoint", "csv"], interrupt=(2, 4), save_freq=3
    )
    assert resumed[0].state.global_step == straight[0].state.global_step == EPOCHS * 5
    assert resumed[2].epoch == [2, 3]  # it finished the interrupted epoch, then the last


def test_mid_epoch_resume_inside_an_accumulation_group_keeps_its_gradients(tmp_path):
    straight_interrupted_resumed(
        tmp_path, ["checkpoint", "plateau"], interrupt=(1, 4), save_freq=2, accumulate=3
    )


@given(  # example counts: the hypothesis profile (conftest.py)
    order=st.permutations(["checkpoint", "early", "plateau", "schedule", "csv"]),
    accumulate=st.integers(1, 3),
    save_freq=st.sampled_from(["epoch", 2, 3, 7]),
    interrupt=st.tuples(st.integers(1, EPOCHS - 1), st.integers(0, 4)),
)
def test_property_resumed_run_equals_the_straight_run_bitwise(
    tmp_path_factory, order, accumulate, save_freq, interrupt
):
    folder = tmp_path_factory.mktemp("case")
    options = {"accumulate": accumulate, "save_freq": save_freq}
    straight = run(order, folder / "straight", **options)
    broken = run(order, folder / "broken", interrupt=interrupt, **options)
    if not broken[0].state.interrupted or not (folder / "broken" / "last.pt").exists():
        # stopped early before the interrupt, or interrupted before the first save
        return
    resumed = run(order, folder / "broken", resume=True, **options)
    assert_same_run(straight, resumed, folder / "straight", folder / "broken")


def test_a_resumed_run_that_had_stopped_early_stays_stopped(tmp_path):
    order = ["early", "checkpoint"]
    trainer, callbacks, _ = run(order, tmp_path)
    assert trainer.state.stop_training  # EarlyStopping ended it before EPOCHS
    resumed, _, history = run(order, tmp_path, resume=True)
    assert history.epoch == [] and resumed.state.global_step == trainer.state.global_step


# ---------------------------------------------------------------------------- the log file
def test_csv_logger_keeps_its_rows_on_resume_and_drops_those_trained_again(tmp_path):
    straight_interrupted_resumed(tmp_path, ["csv", "checkpoint"], interrupt=(3, 1), save_freq=7)
    rows = (tmp_path / "broken" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "0", "1", "2", "3"]


def test_a_failed_resume_leaves_the_csv_log_as_it_was(tmp_path):
    run(["csv", "checkpoint"], tmp_path, interrupt=(2, 0))
    before = (tmp_path / "log.csv").read_text()
    (tmp_path / "last.pt").write_bytes(b"damaged")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        run(["csv", "checkpoint"], tmp_path, resume=True)
    assert (tmp_path / "log.csv").read_text() == before


def test_csv_append_onto_a_file_with_other_columns_is_refused(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,accuracy\n0,0.5\n")
    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    with pytest.raises(ValueError, match=r"has columns \['epoch', 'accuracy'\]"):
        trainer.fit(
            loader(tiny_data(8)),
            callbacks=[CSVLogger(tmp_path / "log.csv", append=True)],
            verbose=0,
        )


# ------------------------------------------------------------------------ callback identity
def _restored(callbacks, path: Path, epochs: int, shuffle: bool = True):
    """Resume with ``callbacks`` but train no further: their state right after the restore."""
    model = tiny_model(seed=7, batch_norm=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    trainer = labpkg.Trainer(model, opt, "cross_entropy", metrics=[labpkg.MeanIoU(3)])
    data = loader(tiny_data(N), shuffle=shuffle)  # the loader that wrote `path`
    trainer.fit(data, epochs, callbacks=callbacks, verbose=0, resume_from=path)
    return callbacks


def test_callback_state_is_matched_by_key_not_position(tmp_path):
    run(["early", "checkpoint"], tmp_path, interrupt=(2, 0))  # last.pt: after epoch 1
    saved = labpkg.load_checkpoint(tmp_path / "last.pt")["callbacks"]["EarlyStopping(loss)"]
    plateau = ReduceLROnPlateau(monitor="loss")
    early = EarlyStopping(monitor="loss", patience=1, min_delta=0.02)
    _restored([plateau, early, ModelCheckpoint(str(tmp_path / "last.pt"))], tmp_path / "last.pt", 2)
    assert _comparable(early.state_dict()) == _comparable(saved)  # its own state, found by key
    assert plateau.best is None and plateau.wait == 0  # new on resume: it starts fresh


def test_two_checkpoints_get_their_own_state_back_in_any_order(tmp_path):
    best = ModelCheckpoint(str(tmp_path / "best.pt"), monitor="loss", save_best_only=True)
    last = ModelCheckpoint(str(tmp_path / "last.pt"))
    model = tiny_model(seed=7, batch_norm=True)  # the model _restored builds
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    trainer.fit(loader(tiny_data(N)), 3, callbacks=[best, last], verbose=0)
    again_last = ModelCheckpoint(str(tmp_path / "last.pt"))
    again_best = ModelCheckpoint(str(tmp_path / "best.pt"), monitor="loss", save_best_only=True)
    _restored([again_last, again_best], tmp_path / "last.pt", 3, shuffle=False)  # reversed
    assert again_best.best == best.best and again_last.best is None


def test_saved_state_that_no_callback_claims_is_a_clear_error(tmp_path):
    run(["early", "checkpoint"], tmp_path, interrupt=(2, 0))
    with pytest.raises(ValueError, match=r"state for callbacks \['EarlyStopping\(loss\)'\]"):
        run(["checkpoint"], tmp_path, resume=True)


def test_two_callbacks_with_one_key_are_told_apart_by_setting_key(tmp_path):
    a, b = EarlyStopping(monitor="loss"), EarlyStopping(monitor="loss", patience=5)
    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    with pytest.raises(ValueError, match="share the state key"):
        trainer.fit(
            loader(tiny_data(8)),
            callbacks=[a, b, ModelCheckpoint(str(tmp_path / "c.pt"))],
            verbose=0,
        )
    b.key = "patient"
    trainer.fit(
        loader(tiny_data(8)), callbacks=[a, b, ModelCheckpoint(str(tmp_path / "c.pt"))], verbose=0
    )
    saved = labpkg.load_checkpoint(tmp_path / "c.pt")["callbacks"]
    assert {"EarlyStopping(loss)", "patient"} <= saved.keys()


def test_numpy_numbers_in_callback_state_are_saved_as_python_numbers(tmp_path):
    import numpy as np

    class Tracker(labpkg.Callback):
        def state_dict(self):
            return {"best": np.float64(0.25), "seen": np.int64(3), "curve": np.arange(3.0)}

    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    trainer.fit(
        loader(tiny_data(8)),
        callbacks=[Tracker(), ModelCheckpoint(str(tmp_path / "c.pt"))],
        verbose=0,
    )
    state = labpkg.load_checkpoint(tmp_path / "c.pt")["callbacks"]["Tracker"]  # weights_only
    assert state["best"] == 0.25 and state["seen"] == 3 and state["curve"].tolist() == [0, 1, 2]


# ------------------------------------------------------------------ what is and is not saved
def test_terminate_on_nan_leaves_the_last_good_checkpoint_in_place(tmp_path):
    losses = iter([0.5] * 5 + [0.4, math.nan] + [0.3] * 20)

    def scripted(logits, target):
        return logits.float().mean() * 0 + next(losses)

    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), scripted)
    last = ModelCheckpoint(str(tmp_path / "last.pt"))
    with pytest.warns(UserWarning, match="diverged"):
        trainer.fit(loader(tiny_data(N)), 3, callbacks=[TerminateOnNaN(), last], verbose=0)
    saved = labpkg.load_checkpoint(tmp_path / "last.pt")
    assert saved["position"]["epoch"] == 0  # epoch 1's checkpoint was not written over it
    assert saved["position"]["complete"]


def test_stale_temporary_files_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    (tmp_path / ".c.pt.abc123.tmp").write_bytes(b"half")  # a save killed midway, earlier
    (tmp_path / ".other.pt.x.tmp").write_bytes(b"half")  # another checkpoint's: left alone
    labpkg.save_checkpoint({"step": 1}, tmp_path / "c.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.x.tmp", "c.pt"]


def test_ctrl_c_lands_at_the_end_of_the_current_mini_batch():
    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    before = signal.getsignal(signal.SIGINT)  # default_int_handler; SIG_IGN in a job run with &
    with pytest.warns(UserWarning, match="interrupted"):
        history = trainer.fit(
            loader(tiny_data(N)), 3, callbacks=[InterruptAt(1, 2, signal=True)], verbose=0
        )
    # mini-batch 2 of epoch 1 finished, update included; nothing after it ran
    assert trainer.state.interrupted and trainer.state.global_step == 5 + 3
    assert history.epoch == [0]  # the unfinished epoch has no logs
    assert signal.getsignal(signal.SIGINT) is before  # the handler fit found is restored


# ------------------------------------------------------------------- restore: all or nothing
def _trainer_and_file(tmp_path, optimizer="sgd"):
    model = tiny_model()
    opt = labpkg.get_optimizer(optimizer, model.parameters(), lr=0.1)
    trainer = labpkg.Trainer(model, opt, "cross_entropy")
    trainer.fit(
        loader(tiny_data(8)), callbacks=[ModelCheckpoint(str(tmp_path / "c.pt"))], verbose=0
    )
    return trainer


def test_a_checkpoint_for_another_optimizer_is_refused_before_anything_changes(tmp_path):
    _trainer_and_file(tmp_path, "sgd")
    other = tiny_model(seed=3)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    trainer = labpkg.Trainer(
        other, labpkg.get_optimizer("adam", other.parameters()), "cross_entropy"
    )
    with pytest.raises(
        ValueError, match="optimizer: 'torch.optim.sgd.SGD' when saved, 'torch.optim.adam.Adam' now"
    ):
        trainer.fit(loader(tiny_data(8)), verbose=0, resume_from=tmp_path / "c.pt")
    for key, value in other.state_dict().items():
        assert torch.equal(value, before[key]), key  # the model was not overwritten


def test_a_weights_only_file_cannot_resume_and_says_how_to_load_it(tmp_path):
    trainer = _trainer_and_file(tmp_path)
    # what ModelCheckpoint(save_weights_only=True) and most tutorials write
    torch.save(trainer.model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="model weights only.*load_state_dict"):
        trainer.restore(tmp_path / "w.pt")


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path):
    _trainer_and_file(tmp_path)
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="damaged or was cut short"):
        labpkg.load_checkpoint(tmp_path / "cut.pt")


# ------------------------------------------- a resume that cannot be exact is refused, by name
#: A condition changed between the checkpoint and the resume, and the field the error names.
CHANGES = {
    "batch_size": {"batch_size": 8},  # only 8 of 16 samples trained in the resumed epoch
    "dataset_length": {"n": 24},  # some samples twice, others never
    "sampler": {"shuffle": False},
    "drop_last": {"drop_last": True},
    "batches_per_epoch": {"batches_per_epoch": 4},
    "accumulate_grad_batches": {"accumulate": 2},  # across a mid-group checkpoint
    "generators": {"generator": True},
    "optimizer": {"optimizer": labpkg.optim.SGD},  # torch.optim.SGD's state, the same name
    "amp": {"amp_dtype": torch.float16},  # off -> float16: no GradScaler state to load
}


@pytest.mark.parametrize("field, change", CHANGES.items(), ids=CHANGES.keys())
def test_a_mid_epoch_resume_under_changed_conditions_is_refused_naming_the_field(
    tmp_path, field, change
):
    run(["checkpoint"], tmp_path, save_freq=3, interrupt=(2, 4))  # saved in epoch 2, batch 1
    with pytest.raises(ValueError, match=rf"{field}: .* when saved, .* now"):
        run(["checkpoint"], tmp_path, resume=True, **change)


def test_a_refused_resume_has_overwritten_nothing(tmp_path):
    run(["checkpoint"], tmp_path, interrupt=(2, 0))
    model = tiny_model(seed=3, batch_norm=True)  # run's architecture, other weights
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    trainer = labpkg.Trainer(model, opt, "cross_entropy", amp=True, amp_dtype=torch.float16)
    with pytest.raises(ValueError, match="amp: 'off' when saved, 'float16' now"):
        trainer.restore(tmp_path / "last.pt")  # AMP off -> float16
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert trainer.state.global_step == 0 and not opt.state


def test_a_mid_epoch_metric_of_another_num_classes_is_refused_before_the_weights_load(
    tmp_path,
):
    run(["checkpoint"], tmp_path, save_freq=3, interrupt=(2, 4))  # saved mid-epoch 2
    model = tiny_model(seed=7, batch_norm=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    trainer = labpkg.Trainer(model, opt, "cross_entropy", [labpkg.MeanIoU(4)], device="cpu")
    callbacks = make_callbacks(["checkpoint"], tmp_path, trainer, 3)
    data = loader(tiny_data(N), batch_size=BATCH, shuffle=True)
    with pytest.raises(ValueError, match=r"MeanIoU\(num_classes=4\).*num_classes=3"):
        trainer.fit(data, EPOCHS, callbacks=callbacks, verbose=0, resume_from=tmp_path / "last.pt")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert trainer.state.global_step == 0


def test_strict_resume_false_warns_and_continues_at_the_next_epoch_boundary(tmp_path):
    run(["checkpoint"], tmp_path, save_freq=3, interrupt=(2, 4))  # saved in epoch 2, batch 1
    trainer, _, history = run(["checkpoint"], tmp_path, resume=True, strict=False, batch_size=8)
    assert any("batch_size: 4 when saved, 8 now" in m for m in trainer.caught)
    assert history.epoch == [3]  # the rest of epoch 2 cannot be told apart with batches of 8
    assert trainer.state.global_step == 2 * 5 + 2 + 3  # epochs 0-1, epoch 2's first 2, then 3


def test_the_refusal_names_the_fix_and_the_way_to_accept(tmp_path):
    run(["checkpoint"], tmp_path, interrupt=(2, 0))
    with pytest.raises(ValueError) as refused:
        run(["checkpoint"], tmp_path, resume=True, shuffle=False)
    message = str(refused.value)
    assert "pass DataLoader(shuffle=...) or sampler= as saved" in message
    assert "strict_resume=False" in message


# ------------------------------------------ the data pipeline's own random generators come back
def _augmented_run(folder: Path, interrupt=None, resume=False):
    model = tiny_model(seed=7)
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.3), "cross_entropy")
    # random draws in generators the loader does not own: the sampler's and the augmentation's
    data = labpkg.Transformed(tiny_data(N), labpkg.RandomFlipCrop(generator=torch.Generator()))
    sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(1))
    callbacks = [ModelCheckpoint(str(folder / "last.pt"), save_freq=3)]
    callbacks += [InterruptAt(*interrupt)] if interrupt else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "interrupted"
        trainer.fit(loader(data, sampler=sampler), 3, callbacks=callbacks, verbose=0,
                    resume_from=folder / "last.pt" if resume else None)  # fmt: skip
    return trainer


def test_sampler_and_augmentation_generators_are_saved_so_resume_is_exact(tmp_path):
    straight = _augmented_run(tmp_path / "straight")
    _augmented_run(tmp_path / "broken", interrupt=(1, 4))  # saved in epoch 1, batch 0
    resumed = _augmented_run(tmp_path / "broken", resume=True)
    for (name, a), b in zip(straight.model.state_dict().items(),
                            resumed.model.state_dict().values(), strict=True):  # fmt: skip
        assert torch.equal(a, b), name


def test_lr_find_puts_back_the_augmentation_generator(tmp_path):
    flip = labpkg.RandomFlipCrop(generator=torch.Generator().manual_seed(4))
    data = loader(labpkg.Transformed(tiny_data(8), flip))
    before = flip.generator.get_state()
    labpkg.lr_find(tiny_trainer(), data, num_updates=4)
    assert torch.equal(flip.generator.get_state(), before)


# ------------------------------------------------- a checkpoint records where training stands
def test_a_checkpoint_saved_before_training_resumes_at_epoch_0(tmp_path):
    tiny_trainer().save_training_state(str(tmp_path / "c.pt"))
    history = tiny_trainer().fit(loader(tiny_data(8)), 2, verbose=0, resume_from=tmp_path / "c.pt")
    assert history.epoch == [0, 1]


def test_save_checkpoint_after_ctrl_c_continues_the_epoch_exactly(tmp_path):
    order = ["early", "plateau", "csv"]
    straight = run(order, tmp_path / "straight")
    broken, _, partial = run(order, tmp_path / "broken", ctrl_c=(2, 2))
    assert broken.state.interrupted and partial.epoch == [0, 1]
    broken.save_training_state(tmp_path / "broken" / "last.pt")  # after mini-batch 2 of epoch 2
    resumed = run(order, tmp_path / "broken", resume=True)
    assert resumed[2].epoch == [e for e in straight[2].epoch if e >= 2]
    assert_same_run(straight, resumed, tmp_path / "straight", tmp_path / "broken")


def test_save_checkpoint_after_an_interrupt_inside_a_mini_batch_is_refused(tmp_path):
    broken, _, _ = run(["early"], tmp_path, interrupt=(2, 2))  # raised inside mini-batch 2
    with pytest.raises(ValueError, match="not between mini-batches"):
        broken.save_training_state(tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_restore_then_fit_continues_and_never_retrains(tmp_path):
    first = tiny_trainer()
    first.fit(loader(tiny_data(8)), 2, verbose=0)
    first.save_training_state(tmp_path / "c.pt")  # after epoch 1
    trainer = tiny_trainer()
    assert trainer.restore(tmp_path / "c.pt") == (2, 0)
    history = trainer.fit(loader(tiny_data(8)), 3, verbose=0)
    assert history.epoch == [2] and trainer.state.global_step == 3 * 2


def test_a_checkpoint_past_epochs_is_refused(tmp_path):
    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"))
    tiny_trainer().fit(loader(tiny_data(8)), 3, callbacks=[ckpt], verbose=0)
    with pytest.raises(ValueError, match=r"past fit\(epochs=2\)"):
        tiny_trainer().fit(loader(tiny_data(8)), 2, verbose=0, resume_from=tmp_path / "last.pt")


def test_ctrl_c_in_on_epoch_end_drops_the_pending_save(tmp_path):
    class CtrlCAtEpochEnd(labpkg.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt  # after ModelCheckpoint asked for epoch 1's file

    trainer = tiny_trainer()
    ckpt = ModelCheckpoint(str(tmp_path / "last.pt"))
    with pytest.warns(UserWarning, match="not saving"):
        trainer.fit(loader(tiny_data(8)), 3, callbacks=[ckpt, CtrlCAtEpochEnd()], verbose=0)
    trainer.fit(loader(tiny_data(8)), 1, verbose=0)  # a later fit on the same trainer
    saved = labpkg.load_checkpoint(tmp_path / "last.pt")["position"]
    assert saved == {"epoch": 0, "batch": 1, "complete": True}  # epoch 0's, whole


# ----------------------------------------------------------- the property, with changed conditions
KINDS = [(None, {}), *CHANGES.items()]


@given(
    kind=st.sampled_from(KINDS),
    save_freq=st.sampled_from(["epoch", 3]),
    interrupt=st.tuples(st.integers(1, EPOCHS - 1), st.integers(0, 4)),
)
def test_property_every_changed_resume_is_refused_by_name_or_exact(
    tmp_path_factory, kind, save_freq, interrupt
):
    field, change = kind
    folder, order = tmp_path_factory.mktemp("case"), ["checkpoint", "plateau", "csv"]
    straight = run(order, folder / "straight", save_freq=save_freq)
    run(order, folder / "broken", interrupt=interrupt, save_freq=save_freq)
    try:
        resumed = run(order, folder / "broken", resume=True, save_freq=save_freq, **change)
    except ValueError as refused:
        assert field is not None and field in str(refused)
        return
    assert_same_run(straight, resumed, folder / "straight", folder / "broken")

"""Callbacks: spec cases E1-E9, C1-C2, R1-R2, T2-T3, through hooks or the real Trainer."""

from __future__ import annotations

import math
from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch
from helpers import Recorder, loader, tiny_data, tiny_model, tiny_trainer

import labpkg
from labpkg.callbacks import (
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    LivePlot,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


class FakeTrainer:
    """The minimum a callback touches, for value-only cases driven through the hooks."""

    def __init__(self, lr: float = 1.0):
        self.state = labpkg.TrainState()
        self.model = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)


def drive(callback, values, key="val_loss", trainer=None):
    """Feed ``values`` as epoch logs; return the epoch at which training was stopped."""
    trainer = trainer or FakeTrainer()
    callback.set_trainer(trainer)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {key: value})
        if trainer.state.stop_training:
            return epoch
    return None


@pytest.mark.parametrize(
    ("kwargs", "values", "stop", "best"),
    [
        ({"patience": 2}, [1, 0.9, 0.9, 0.95, 0.8], 3, 0.9),  # E1
        ({"min_delta": 0.05, "patience": 2}, [1, 0.96, 0.94, 0.93, 0.93], 4, 0.94),  # E2
        ({"patience": 0}, [1, 1], 1, 1),  # E3
        ({"baseline": 0.5, "patience": 2}, [0.9, 0.9, 0.9], 1, 0.9),  # E4
        ({"start_from_epoch": 2, "patience": 1}, [5, 4, 3, 3], 3, 3),  # E5
        ({"mode": "max", "patience": 1}, [0.1, 0.2, 0.2], 2, 0.2),  # E6
        ({"patience": 2}, [1, math.nan, math.nan], 2, 1),  # E7
        ({"patience": 2, "check_finite": True}, [1, math.nan, math.nan], 1, 1),  # E7
        ({"patience": 1}, [math.nan, 1, 0.9], None, 0.9),  # E7b: NaN never becomes best
    ],
    ids=["E1", "E2", "E3", "E4", "E5", "E6", "E7", "E7-finite", "E7b"],
)
def test_early_stopping_spec_cases(kwargs, values, stop, best):
    callback = EarlyStopping(monitor="val_loss", **kwargs)
    assert drive(callback, values) == stop
    assert callback.best == best
    if stop is not None:
        assert callback.stopped_epoch == stop


def test_e1_best_epoch():
    callback = EarlyStopping(patience=2)
    drive(callback, [1, 0.9, 0.9, 0.95, 0.8])
    assert callback.best_epoch == 1


def test_e8_restore_best_weights_even_without_a_stop():
    class Scripted(labpkg.Callback):  # val_loss: best at epoch 1 of 3
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [0.5, 0.1, 0.3][epoch]
            self.snapshots.append(
                {k: v.clone() for k, v in self.trainer.model.state_dict().items()}
            )

    scripted = Scripted()
    scripted.snapshots = []
    stop = EarlyStopping(patience=5, restore_best_weights=True)
    trainer = tiny_trainer(lr=0.5)
    trainer.fit(loader(tiny_data(8)), epochs=3, callbacks=[scripted, stop], verbose=0)
    assert not trainer.state.stop_training and stop.best_epoch == 1
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, scripted.snapshots[1][key])
    assert not torch.equal(trainer.model.head.weight, scripted.snapshots[2]["head.weight"])


def test_e9_auto_mode_follows_each_metrics_higher_is_better_and_refuses_unknown_names():
    trainer = SimpleNamespace(metrics=[labpkg.SegmentationMetrics(3), LowerIsBetter()])
    for monitor, mode in [("val_mean_iou", "max"), ("val_dice", "max"), ("errors", "min")]:
        stop = EarlyStopping(monitor=monitor)
        stop.set_trainer(trainer)  # as fit does, before the first mini-batch
        assert stop.mode == mode, monitor
    assert EarlyStopping(monitor="loss").mode == "min"  # a loss: known when built
    with pytest.raises(ValueError, match="val_foo"):
        EarlyStopping(monitor="val_foo").set_trainer(trainer)


class LowerIsBetter:
    """A user's metric that declares its key and its direction, as the Metric protocol asks."""

    higher_is_better = False

    def log_keys(self):
        return ["errors"]


def test_a_callback_that_declares_its_log_keys_keeps_the_file_name_check(tmp_path):
    class Logs(labpkg.Callback):
        log_keys = ("lr_seen",)

        def on_epoch_end(self, epoch, logs=None):
            logs["lr_seen"] = 0.1

    named = ModelCheckpoint(str(tmp_path / "{lr_seen}.pt"))
    tiny_trainer().fit(loader(tiny_data(8)), callbacks=[Logs(), named], verbose=0)
    assert (tmp_path / "0.1.pt").is_file()
    bad, trainer = ModelCheckpoint(str(tmp_path / "{val_iou}.pt")), tiny_trainer()
    with pytest.raises(KeyError, match=r"uses \['val_iou'\], which the logs will not hold"):
        trainer.fit(loader(tiny_data(8)), callbacks=[Logs(), bad], verbose=0)
    assert trainer.state.global_step == 0  # refused before training


def test_missing_monitor_warns_once_listing_the_keys():
    callback = EarlyStopping(monitor="val_loss")
    callback.set_trainer(FakeTrainer())
    callback.on_train_begin()
    with pytest.warns(UserWarning, match=r"\['loss'\]"):
        callback.on_epoch_end(0, {"loss": 1.0})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callback.on_epoch_end(1, {"loss": 1.0})  # no second warning


class ScriptedLogs(labpkg.Callback):
    """Overwrites one log value per epoch with a scripted one (before later callbacks see it)."""

    def __init__(self, key: str, values: list[float]) -> None:
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def test_c1_best_only_files_from_a_template(tmp_path):
    values = [0.5, 0.5, 0.4, math.nan, 0.3]
    checkpoint = ModelCheckpoint(
        str(tmp_path / "{epoch:02d}-{val_loss:.2f}.pt"), save_best_only=True
    )
    tiny_trainer().fit(
        loader(tiny_data(8)),
        epochs=5,
        validation_data=loader(tiny_data(4)),
        callbacks=[ScriptedLogs("val_loss", values), checkpoint],
        verbose=0,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-0.50.pt", "03-0.40.pt", "05-0.30.pt"]


def test_c2_missing_monitor_saves_with_a_warning_and_unknown_placeholder_raises(tmp_path):
    trainer = tiny_trainer()
    best = ModelCheckpoint(str(tmp_path / "m.pt"), save_best_only=True)
    with pytest.warns(UserWarning, match="val_loss"):
        trainer.fit(loader(tiny_data(8)), callbacks=[best], verbose=0)
    assert (tmp_path / "m.pt").exists()
    bad = ModelCheckpoint(str(tmp_path / "{val_iou}.pt"))
    with pytest.raises(KeyError, match="val_iou"):
        tiny_trainer().fit(loader(tiny_data(8)), callbacks=[bad], verbose=0)


def test_checkpoint_save_freq_in_batches_counts_across_epochs(tmp_path):
    every3 = ModelCheckpoint(str(tmp_path / "s{epoch}.pt"), save_freq=3, monitor="loss")
    tiny_trainer().fit(loader(tiny_data(8)), epochs=3, callbacks=[every3], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s2.pt", "s3.pt"]  # batches 3 and 6


def test_initial_value_threshold_must_be_beaten(tmp_path):
    ckpt = ModelCheckpoint(
        str(tmp_path / "b.pt"), save_best_only=True, monitor="loss", initial_value_threshold=-1.0
    )
    tiny_trainer().fit(loader(tiny_data(8)), callbacks=[ckpt], verbose=0)
    assert not (tmp_path / "b.pt").exists()


def test_r1_reduce_on_plateau_keras_sequence():
    trainer = FakeTrainer(lr=1.0)
    callback = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    callback.set_trainer(trainer)
    callback.on_train_begin()
    after, logged = [], []
    for epoch in range(8):
        logs = {"val_loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        after.append(trainer.optimizer.param_groups[0]["lr"])
    assert after == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2]
    assert logged == [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.2]


def test_r1_torch_plateau_reduces_one_epoch_later():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    torch_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2
    )
    after = []
    for _ in range(8):
        torch_plateau.step(1.0)
        after.append(opt.param_groups[0]["lr"])
    assert after == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]


def test_reduce_on_plateau_rejects_a_factor_that_does_not_reduce():
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.5)


def test_r2_learning_rate_scheduler_halving_from_epoch_1():
    schedule = LearningRateScheduler(lambda epoch, lr: lr if epoch < 1 else lr * 0.5)
    trainer = tiny_trainer(lr=1.0)
    history = trainer.fit(loader(tiny_data(8)), epochs=3, callbacks=[schedule], verbose=0)
    assert history.history["learning_rate"] == [1.0, 0.5, 0.25]


def test_t2_terminate_on_nan_after_the_bad_batch():
    losses = iter([0.5, math.nan, 0.3])

    def scripted_loss(logits, target):
        return logits.float().mean() * 0 + next(losses)

    rec = Recorder()
    model = tiny_model()
    trainer = labpkg.Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.1), scripted_loss, device="cpu"
    )
    trainer.fit(loader(tiny_data(12)), callbacks=[TerminateOnNaN(), rec], verbose=0)
    assert [e.batch for e in rec.events if e.hook == "batch_end"] == [0, 1]
    with pytest.raises(RuntimeError, match="loss is nan"):
        TerminateOnNaN(raise_error=True).on_train_batch_end(0, {"loss": math.nan})


def test_t3_csv_header_and_zero_based_epochs(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(str(path))
    logger.set_trainer(FakeTrainer())
    logger.on_train_begin()
    logger.on_epoch_end(0, {"val_mean_iou": 0.5, "loss": 1.0, "val_loss": 2.0})
    logger.on_epoch_end(1, {"loss": 0.5})
    logger.on_train_end()
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss,val_mean_iou"
    assert lines[1].startswith("0,1.0,2.0,0.5") and lines[2] == "1,0.5,NA,NA"


def test_csv_adds_val_twins_and_append_writes_one_header(tmp_path):
    path = tmp_path / "log.csv"
    for _ in range(2):
        logger = CSVLogger(str(path), append=True)
        logger.set_trainer(FakeTrainer())
        logger.on_train_begin()
        logger.on_epoch_end(0, {"loss": 1.0})
        logger.on_train_end()
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss" and len(lines) == 3


def test_callback_order_user_callbacks_first_then_history_and_progress():
    seen = []

    class AddKey(labpkg.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["extra"] = 1.0
            seen.append(type(self.trainer.callbacks.callbacks[-1]).__name__)

    trainer = tiny_trainer()
    history = trainer.fit(loader(tiny_data(8)), callbacks=[AddKey()], verbose=2)
    assert history.history["extra"] == [1.0]  # History ran after AddKey
    assert seen == ["ProgbarLogger"]


def test_mini_batch_logs_are_built_only_for_a_callback_that_reads_them(monkeypatch):
    means = []
    mean = labpkg.loop.evaluation.RunningLoss.mean

    def counted(self):
        means.append(1)
        return mean(self)

    monkeypatch.setattr(labpkg.loop.evaluation.RunningLoss, "mean", counted)
    data, val = loader(tiny_data(8)), loader(tiny_data(4, seed=1))  # 2 + 1 mini-batches
    tiny_trainer().fit(data, validation_data=val, verbose=0)  # History reads epoch logs only
    assert means == []
    batch_losses = []

    class Reader(labpkg.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batch_losses.append(float(logs["loss"]))

        def on_test_batch_end(self, batch, logs=None):
            batch_losses.append(float(logs["loss"]))

    tiny_trainer().fit(data, validation_data=val, callbacks=[Reader()], verbose=0)
    assert len(means) == len(batch_losses) == 3


def test_resume_mid_patience_stops_at_the_same_epoch_as_a_straight_run(tmp_path):
    def run(epochs, resume=None, interrupt_at=None):
        class Scripted(labpkg.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs["val_loss"] = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0][epoch]
                if epoch == interrupt_at:
                    raise KeyboardInterrupt

        stop = EarlyStopping(patience=3)
        ckpt = ModelCheckpoint(str(tmp_path / "last.pt"))
        trainer = tiny_trainer()
        with pytest.warns(UserWarning) if interrupt_at is not None else nullcontext():
            trainer.fit(
                loader(tiny_data(8)),
                epochs=epochs,
                callbacks=[Scripted(), stop, ckpt],
                verbose=0,
                resume_from=resume,
            )
        return stop

    straight = run(7)
    assert straight.stopped_epoch == 4
    run(7, interrupt_at=3)  # the checkpoint of epoch 2 holds wait=1
    resumed = run(7, resume=tmp_path / "last.pt")
    assert resumed.stopped_epoch == 4 and resumed.best == 0.5


def test_live_plot_is_silent_in_a_terminal(capsys):
    trainer = tiny_trainer()
    trainer.fit(loader(tiny_data(8)), epochs=2, callbacks=[LivePlot()], verbose=0)
    assert capsys.readouterr().out == ""


def test_live_plot_shows_one_figure_and_redraws_it_every_epoch(monkeypatch):
    import IPython.display

    import labpkg.callbacks.live

    shown = []

    class Handle:
        def update(self, figure):
            shown.append(("update", figure))

    def display(figure, display_id=False):
        shown.append(("display", figure))
        assert display_id is True  # one output, redrawn in place
        return Handle()

    monkeypatch.setattr(labpkg.callbacks.live, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    history = tiny_trainer().fit(
        loader(tiny_data(8)), epochs=3, callbacks=[LivePlot(keys=["loss"])], verbose=0
    )
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    last = shown[-1][1].axes[0].lines[0]  # the loss curve after epoch 3
    assert list(last.get_xdata()) == [1, 2, 3]
    assert list(last.get_ydata()) == history.history["loss"]


def test_history_table_and_plot():
    trainer = tiny_trainer(metrics=[labpkg.MeanIoU(3)])
    history = trainer.fit(
        loader(tiny_data(8)), epochs=2, validation_data=loader(tiny_data(4)), verbose=0
    )
    table = history.table()
    assert table.splitlines()[0].split() == [
        "epoch",
        "loss",
        "mean_iou",
        "val_loss",
        "val_mean_iou",
    ]
    assert len(table.splitlines()) == 3 and history.rows()[0]["epoch"] == 1
    figure = history.plot()
    assert len(figure.axes) == 2


def test_batch_history_recovers_each_mini_batchs_own_loss_across_epochs():
    """Batches of 5, 5 and 2 (uneven last): the recovered losses are the losses the model had
    on each mini-batch, measured with the weights of that moment (lr 0: the weights stay)."""
    data, model = tiny_data(12), tiny_model()
    trainer = tiny_trainer(model, lr=1e-12)
    recorder = labpkg.BatchHistory()
    trainer.fit(loader(data, batch_size=5), epochs=2, callbacks=[recorder], verbose=0)
    model.eval()
    with torch.no_grad():
        own = [
            torch.nn.functional.cross_entropy(model(x), y).item()
            for x, y in loader(data, batch_size=5)
        ]
    assert recorder.epoch == [0, 0, 0, 1, 1, 1]
    assert recorder.samples == [5, 10, 12] * 2
    assert recorder.batch_losses() == pytest.approx(own * 2, rel=1e-5)
    assert recorder.running[2] == pytest.approx(trainer.history.history["loss"][0], rel=1e-6)


def test_a_per_update_scheduler_steps_once_per_update_with_a_remainder_group():
    """10 mini-batches per epoch in groups of 3: updates after mini-batches 3, 6, 9 and 10."""
    trainer = tiny_trainer(accumulate_grad_batches=3, lr=1.0)
    calls = []
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        trainer.optimizer, lambda step: calls.append(step) or 0.9**step
    )
    recorder = labpkg.BatchHistory()
    callbacks = [labpkg.LRSchedulerCallback(scheduler, interval="step"), recorder]
    trainer.fit(loader(tiny_data(20), batch_size=2), epochs=2, callbacks=callbacks, verbose=0)
    assert trainer.state.global_step == 2 * labpkg.updates_per_epoch(20, 2, accumulate=3) == 8
    assert scheduler.last_epoch == trainer.state.global_step  # one step per update
    assert recorder.updated == [False, False, True] * 3 + [True] + [False, False, True] * 3 + [True]
    assert recorder.update_lrs() == pytest.approx([0.9**k for k in range(8)])
    assert len(calls) == 1 + 8  # the scheduler's own first call, then once per update


# ------------------------------------------- learning-rate callbacks scale each parameter group
def two_group_trainer(backbone: float = 0.01, head: float = 0.1) -> FakeTrainer:
    """A trainer whose optimizer has a backbone group and a head group at another rate."""
    trainer = FakeTrainer()
    weight, bias = trainer.model.parameters()
    trainer.optimizer = torch.optim.SGD(
        [{"params": [weight]}, {"params": [bias], "lr": head}], lr=backbone
    )
    return trainer


def group_lrs(trainer) -> list[float]:
    return [group["lr"] for group in trainer.optimizer.param_groups]


def test_reduce_on_plateau_multiplies_each_group_by_the_factor_down_to_min_lr():
    trainer = two_group_trainer(backbone=0.01, head=0.1)
    drive(ReduceLROnPlateau(factor=0.5, patience=1), [1.0, 1.0], trainer=trainer)
    assert group_lrs(trainer) == pytest.approx([0.005, 0.05])  # the head stays at 10x
    trainer = two_group_trainer(backbone=0.01, head=0.1)
    drive(ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.01), [1.0, 1.0], trainer=trainer)
    assert group_lrs(trainer) == pytest.approx([0.01, 0.05])  # the backbone was at min_lr


def test_learning_rate_scheduler_scales_every_group_as_it_moves_the_first():
    trainer = two_group_trainer(backbone=0.01, head=0.1)
    drive(LearningRateScheduler(lambda epoch, lr: 0.02), [1.0], trainer=trainer)  # a fixed rate
    assert group_lrs(trainer) == pytest.approx([0.02, 0.2])
    drive(LearningRateScheduler(lambda epoch, lr: lr / 4), [1.0], trainer=trainer)  # a factor
    assert group_lrs(trainer) == pytest.approx([0.005, 0.05])


def test_a_first_group_at_rate_0_cannot_set_the_scale_of_the_others():
    trainer = two_group_trainer(backbone=0.0, head=0.1)
    with pytest.raises(ValueError, match="first parameter group's lr is 0"):
        drive(LearningRateScheduler(lambda epoch, lr: 0.02), [1.0], trainer=trainer)


# ----------------------------------------------------------- each callback instance runs once
def test_the_same_callback_twice_is_refused_before_training():
    stop = EarlyStopping(monitor="loss", patience=2)
    trainer = tiny_trainer()
    with pytest.raises(ValueError, match="the same EarlyStopping appears twice"):
        trainer.fit(loader(tiny_data(8)), epochs=3, callbacks=[stop, stop], verbose=0)
    assert trainer.state.global_step == 0


# ------------------------------------------ a scheduler LRSchedulerCallback cannot step is refused
def test_lr_scheduler_callback_refuses_what_it_cannot_step_and_names_the_fix():
    opt = FakeTrainer().optimizer
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match=r"monitor=.*labpkg.ReduceLROnPlateau"):
        labpkg.LRSchedulerCallback(plateau)
    with pytest.raises(ValueError, match="interval='epoch'"):
        labpkg.LRSchedulerCallback(plateau, interval="step", monitor="val_loss")
    with pytest.raises(TypeError, match="labpkg callback, not a torch scheduler"):
        labpkg.LRSchedulerCallback(ReduceLROnPlateau())
    with pytest.raises(TypeError, match="StepLR"):
        labpkg.LRSchedulerCallback(torch.optim.lr_scheduler.ReduceLROnPlateau)


# ------------------------------------- what would fail after an epoch fails before the first one
@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_one_cycle_schedule_too_short_for_the_run_is_refused_before_training(accumulate):
    trainer = tiny_trainer(accumulate_grad_batches=accumulate)
    updates = labpkg.total_updates(12, 4, epochs=3, accumulate=accumulate)  # 9, or 6
    short = torch.optim.lr_scheduler.OneCycleLR(trainer.optimizer, 1.0, total_steps=updates - 1)
    callback = labpkg.LRSchedulerCallback(short, interval="step")
    with pytest.raises(ValueError, match=f"total_steps={updates}"):
        trainer.fit(loader(tiny_data(12)), epochs=3, callbacks=[callback], verbose=0)
    assert trainer.state.global_step == 0
    exact = torch.optim.lr_scheduler.OneCycleLR(trainer.optimizer, 1.0, total_steps=updates)
    callback = labpkg.LRSchedulerCallback(exact, interval="step")
    trainer.fit(loader(tiny_data(12)), epochs=3, callbacks=[callback], verbose=0)
    assert exact.last_epoch == updates


def test_a_one_cycle_schedule_resumed_mid_epoch_counts_the_updates_left(tmp_path):
    def run(resume_from=None, epochs=2):
        trainer = tiny_trainer(accumulate_grad_batches=2)
        sched = torch.optim.lr_scheduler.OneCycleLR(trainer.optimizer, 1.0, total_steps=4)
        ckpt = ModelCheckpoint(str(tmp_path / "mid.pt"), save_freq=3)  # mid-epoch 1, group 0
        callbacks = [labpkg.LRSchedulerCallback(sched, interval="step"), ckpt]
        trainer.fit(loader(tiny_data(16)), epochs, callbacks=callbacks, verbose=0,
                    resume_from=resume_from)  # fmt: skip
        return trainer, sched

    straight, _ = run()
    run(epochs=1)  # ends with a checkpoint after mini-batch 3 of 4: the run stops there
    resumed, sched = run(resume_from=str(tmp_path / "mid.pt"))
    assert sched.last_epoch == 4
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_a_csv_path_that_cannot_be_written_is_refused_before_training(tmp_path, where):
    (tmp_path / "file").write_text("")
    path = tmp_path if where == "a folder" else tmp_path / "file" / "log.csv"
    trainer = tiny_trainer()
    with pytest.raises(ValueError, match="CSVLogger cannot write"):
        trainer.fit(loader(tiny_data(8)), epochs=2, callbacks=[CSVLogger(str(path))], verbose=0)
    assert trainer.state.global_step == 0

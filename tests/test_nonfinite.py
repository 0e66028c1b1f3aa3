"""Non-finite is never best: NaN weights or losses are not saved, restored or reported as numbers.

The trap: once weights are NaN, ``argmax`` maps every pixel to class 0, so an all-background
guess can score *higher* than the healthy model on a background-heavy set. The scenes here
make that happen on purpose (every target pixel is background).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import loader, tiny_model
from torch.utils.data import TensorDataset

import labpkg
from labpkg.callbacks import EarlyStopping, LearningRateScheduler, ModelCheckpoint
from labpkg.cli import main


def all_background(n: int = 8, size: int = 8) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=gen)
    return TensorDataset(images, torch.zeros(n, size, size, dtype=torch.long))


class BreakWeightsAt(labpkg.Callback):
    """Turns every weight NaN during epoch ``epoch``, as an exploding update would."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.trainer.state.epoch == self.epoch:
            with torch.no_grad():
                for p in self.trainer.model.parameters():
                    p.fill_(math.nan)


class ArgmaxAccuracy:
    """A user's own metric, as many tutorials write it: no guard against NaN scores."""

    def reset(self):
        self.correct = self.total = 0

    def update(self, preds, target):
        self.correct += int((preds.argmax(1) == target).sum())
        self.total += target.numel()

    def sync(self, all_reduce_sum):
        pass

    def results(self):
        return {"accuracy": self.correct / max(self.total, 1)}


def _trainer():
    model = tiny_model(classes=3, seed=1)
    with torch.no_grad():  # a healthy model that still favours class 1 (not background)
        model.head.bias.copy_(torch.tensor([0.0, 3.0, 0.0]))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    return labpkg.Trainer(model, opt, "cross_entropy", metrics=[ArgmaxAccuracy()], device="cpu")


def _data():
    return loader(all_background())


def test_nan_weights_are_never_saved_as_best_even_when_they_score_higher(tmp_path):
    trainer = _trainer()
    best = ModelCheckpoint(
        str(tmp_path / "best.pt"), monitor="val_accuracy", mode="max", save_best_only=True
    )
    with pytest.warns(UserWarning, match="diverged") as caught:
        trainer.fit(_data(), 4, _data(), callbacks=[BreakWeightsAt(2), best], verbose=0)
    history = trainer.history.history
    # the trap is real: the NaN model scores 1.0, more than any healthy epoch
    assert history["val_accuracy"][2] == 1.0 > max(history["val_accuracy"][:2])
    saved = labpkg.load_checkpoint(tmp_path / "best.pt")
    assert saved["position"]["epoch"] < 2
    assert all(torch.isfinite(w).all() for w in saved["model"].values())
    assert best.best == max(history["val_accuracy"][:2])
    assert sum("diverged" in str(w.message) for w in caught) == 1  # said once, not per epoch


def test_early_stopping_never_restores_nan_weights_as_the_best(tmp_path):
    trainer = _trainer()
    early = EarlyStopping(monitor="val_accuracy", mode="max", patience=5, restore_best_weights=True)
    with pytest.warns(UserWarning, match="diverged"):
        trainer.fit(_data(), 4, _data(), callbacks=[BreakWeightsAt(2), early], verbose=0)
    assert early.best_epoch < 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_diverged_epoch_does_not_overwrite_the_last_good_checkpoint(tmp_path):
    trainer = _trainer()
    last = ModelCheckpoint(str(tmp_path / "last.pt"))
    with pytest.warns(UserWarning, match="diverged"):
        trainer.fit(_data(), 3, callbacks=[BreakWeightsAt(2), last], verbose=0)
    saved = labpkg.load_checkpoint(tmp_path / "last.pt")
    assert saved["position"]["epoch"] == 1
    assert all(torch.isfinite(w).all() for w in saved["model"].values())


@pytest.mark.parametrize("reads_free", [True, False], ids=["cpu", "as-on-a-gpu"])
@pytest.mark.parametrize("metric_class", [labpkg.PixelAccuracy, labpkg.MeanIoU,
                                          labpkg.SegmentationMetrics])  # fmt: skip
def test_metrics_fed_nan_or_inf_scores_report_nan_not_a_plausible_number(
    metric_class, reads_free, monkeypatch
):
    # a CPU tests the scores' sum in Python, a GPU on the device: both must count the batch
    monkeypatch.setattr(labpkg.nn.confusion, "host_reads_are_free", lambda device: reads_free)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    healthy = torch.randn(2, 3, 4, 4)
    one_inf = healthy.clone()
    one_inf[1, 2, 3, 0] = math.inf  # one score of one pixel
    broken = torch.full((2, 3, 4, 4), math.nan)  # argmax: class 0 everywhere, all "correct"
    broken[1] = math.inf
    for bad in (broken, one_inf):
        metric = metric_class(3)
        metric.update(healthy, target)
        assert all(math.isfinite(v) for v in metric.results().values())
        metric.update(bad, target)
        with pytest.warns(UserWarning, match="1 mini-batch"):
            values = metric.results()
        assert all(math.isnan(v) for v in values.values())
        metric.reset()  # the next epoch starts clean
        metric.update(healthy, target)
        assert all(math.isfinite(v) for v in metric.results().values())


def test_a_minus_inf_beside_finite_scores_decides_nothing_but_all_minus_inf_is_caught():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    scores = torch.randn(2, 3, 4, 4)
    scores[0, 2, 1, 1] = -math.inf  # class 2 of one pixel: never its argmax
    metric = labpkg.MeanIoU(3)
    metric.update(scores, target)
    assert math.isfinite(metric.results()["mean_iou"])
    scores[1, :, 2, 2] = -math.inf  # every class of one pixel: argmax undecided (class 0)
    metric.update(scores, target)
    with pytest.warns(UserWarning, match="1 mini-batch"):
        assert math.isnan(metric.results()["mean_iou"])


def test_float16_scores_of_a_healthy_model_are_not_taken_for_overflow():
    metric = labpkg.PixelAccuracy(3)
    scores = torch.full((4, 3, 64, 64), 60000.0, dtype=torch.float16)  # near float16's max
    metric.update(scores, torch.zeros(4, 64, 64, dtype=torch.long))
    assert metric.results()["pixel_accuracy"] == 1.0


@pytest.mark.parametrize("lr", [math.inf, math.nan, -1.0])
def test_a_non_finite_or_negative_learning_rate_is_refused(lr):
    model = tiny_model()
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        labpkg.get_optimizer("adam", model.parameters(), lr=lr)
    if lr > 0 or math.isnan(lr):  # torch itself refuses a negative lr
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        opt.param_groups[0]["lr"] = lr
        with pytest.raises(ValueError, match="learning rate must be a finite number >= 0"):
            labpkg.Trainer(model, opt, "cross_entropy")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1])
def test_a_schedule_returning_nan_inf_or_negative_stops_with_a_clear_error(bad):
    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    schedule = LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else bad)
    with pytest.raises(ValueError, match=r"schedule\(1, lr\) returns must be a finite"):
        trainer.fit(_data(), 3, callbacks=[schedule], verbose=0)
    assert trainer.state.epoch == 1  # found at the epoch that asked for it, before training it


def test_cli_refuses_lr_inf_and_exits_non_zero_when_training_diverged(tmp_path, capsys):
    small = ["--samples", "32", "--val-samples", "8", "--image-size", "16", "--base-width", "4"]
    out = ["--out", str(tmp_path / "run"), "--verbose", "0"]
    with pytest.raises(SystemExit) as exit_:
        main(["train", *small, *out, "--lr", "inf"])
    assert exit_.value.code == 2 and "--lr: must be a finite number >= 0" in capsys.readouterr().err
    status = main(["train", *small, *out, "--lr", "1e30", "--optimizer", "sgd", "--epochs", "2"])
    assert status == 1 and "training diverged" in capsys.readouterr().err
    assert not (tmp_path / "run" / "best.pt").exists()  # no NaN model as "best"

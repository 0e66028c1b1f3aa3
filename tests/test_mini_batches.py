"""Every mini-batch, not only the first: a bad one is named with its fix, an odd one is counted
right, and neither costs a host read (tests/test_host_reads.py counts them).

Label values are checked before use on the first mini-batch of each pass only. A bad label
further on still fails inside torch; the Trainer re-raises that error as one that names the
mini-batch, the argument and the fix.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import loader, tiny_data, tiny_model
from torch import nn
from torch.utils.data import IterableDataset, TensorDataset

import labpkg


def _trainer(loss="cross_entropy", model=None, metrics=(), **kwargs):
    model = model or tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return labpkg.Trainer(model, opt, loss, metrics=list(metrics), device="cpu", **kwargs)


def _labels_from_second_batch_on(value, n=8):
    """tiny_data(n) with ``value`` in a corner of every mask after the first mini-batch of 4."""
    x, y = tiny_data(n).tensors
    y = y.clone()
    y[4:, :2, :2] = value
    return TensorDataset(x, y)


# ------------------------------------------------- labels outside the range, on any mini-batch
LOSSES = {
    "torch CrossEntropyLoss": lambda: nn.CrossEntropyLoss(),
    "labpkg cross_entropy": lambda: "cross_entropy",
    "DiceLoss": lambda: labpkg.DiceLoss(),
    "DiceCELoss": lambda: labpkg.DiceCELoss(),
}


@pytest.mark.parametrize("make_loss", LOSSES.values(), ids=LOSSES.keys())
def test_a_label_out_of_range_after_the_first_mini_batch_names_the_batch_and_the_fix(make_loss):
    trainer = _trainer(make_loss())
    with pytest.raises(ValueError, match=r"mini-batch 1 of train's target holds labels outside "
                       r"\[0, 3\): \[7\].*fix num_classes, or pass ignore_index"):  # fmt: skip
        trainer.fit(loader(_labels_from_second_batch_on(7)), verbose=0)


def test_a_label_out_of_range_in_validation_or_evaluation_names_the_argument():
    bad = loader(_labels_from_second_batch_on(7))
    trainer = _trainer(nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"mini-batch 1 of validation_data's target.*\[7\]"):
        trainer.fit(loader(tiny_data(8)), validation_data=bad, verbose=0)
    with pytest.raises(ValueError, match=r"mini-batch 1 of data's target.*\[7\]"):
        trainer.evaluate(bad)


def test_metrics_that_count_labels_out_of_range_give_the_losses_advice():
    # the loss skips 7, the metric does not: the metric finds it when the epoch is scored
    trainer = _trainer(nn.CrossEntropyLoss(ignore_index=7), metrics=[labpkg.MeanIoU(3)])
    with pytest.raises(ValueError) as counted:
        trainer.fit(loader(_labels_from_second_batch_on(7)), verbose=0)
    with pytest.raises(ValueError) as checked:
        labpkg.nn.losses.cross_entropy(torch.zeros(1, 3, 1, 1), torch.full((1, 1, 1), 7))
    advice = str(checked.value).split("; ", 1)[1]
    assert "pixels had a true or predicted label outside [0, 3)" in str(counted.value)
    assert str(counted.value).endswith(advice)


def test_masks_of_0_and_255_are_told_to_map_255_to_class_1_not_to_ignore_it():
    x, y = tiny_data(8, classes=2).tensors
    data = TensorDataset(x, y * 255)  # black-and-white masks: 255 is the foreground
    trainer = _trainer(model=tiny_model(classes=2))
    with pytest.raises(ValueError) as refused:
        trainer.fit(loader(data), verbose=0)
    message = str(refused.value)
    assert "mask_values={0: 0, 255: 1}" in message
    assert "ignore_index=255 would skip every foreground pixel" in message
    assert "pass ignore_index" not in message


# ------------------------------------------------------- other mistakes seen in the forward pass
def test_a_last_mini_batch_of_one_sample_with_batchnorm_says_drop_last():
    # 2×2 images reach the bottom of this U-Net (one pooling) as 1×1: one value per channel
    x, y = tiny_data(9, size=2).tensors
    trainer = _trainer(nn.CrossEntropyLoss(), model=tiny_model(batch_norm=True))
    with pytest.raises(ValueError, match=r"mini-batch 2 of train holds one sample.*drop_last=True"):
        trainer.fit(loader(TensorDataset(x, y)), verbose=0)
    trainer.fit(loader(TensorDataset(x, y), drop_last=True), verbose=0)  # the advice works


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss(), "cross_entropy", labpkg.DiceCELoss()])
def test_masks_of_shape_n_1_h_w_with_a_multiclass_loss_say_squeeze(loss):
    x, y = tiny_data(8).tensors
    trainer = _trainer(loss)
    with pytest.raises(ValueError, match=r"mini-batch 0 of train: target of shape \(N, 1, H, W\)"):
        trainer.fit(loader(TensorDataset(x, y[:, None])), verbose=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_float_images_without_amp_say_convert_or_turn_amp_on(dtype):
    x, y = tiny_data(8).tensors
    trainer = _trainer(nn.CrossEntropyLoss())
    with pytest.raises(TypeError, match=rf"inputs are {dtype} images.*images.float\(\).*amp=True"):
        trainer.fit(loader(TensorDataset(x.to(dtype), y)), verbose=0)


def test_numpy_integers_are_accepted_as_batch_sizes():
    train, val = labpkg.make_loaders(
        tiny_data(8), tiny_data(4), batch_size=np.int64(4), val_batch_size=np.int32(2)
    )
    assert (train.batch_size, val.batch_size) == (4, 2)
    assert type(train.batch_size) is int  # DataLoader itself refuses NumPy integers
    _trainer().fit(train, validation_data=val, verbose=0)


# ------------------------------------------------------------- right answers, silent before
def test_label_minus_100_is_left_out_of_the_cross_entropy_mean_as_torch_does():
    # -100 is torch's default ignore_index: torch skips those pixels, and so must the
    # denominator of the mean (unchecked mini-batches reach the loss without a look)
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    target[1] = -100
    ours = labpkg.nn.losses.cross_entropy(logits, target, validate_args=False)
    torch.testing.assert_close(ours, F.cross_entropy(logits, target))


def test_training_through_minus_100_labels_matches_torchs_cross_entropy():
    data = loader(_labels_from_second_batch_on(-100))
    ours, theirs = _trainer("cross_entropy"), _trainer(nn.CrossEntropyLoss())
    ours.fit(data, epochs=2, verbose=0)
    theirs.fit(data, epochs=2, verbose=0)
    for a, b in zip(ours.model.parameters(), theirs.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert ours.history.history["loss"] == pytest.approx(theirs.history.history["loss"])


class Stream(IterableDataset):
    """tiny_data(20) as a stream: 5 mini-batches of 4, whatever batches_per_epoch says."""

    def __iter__(self):
        yield from zip(*tiny_data(20).tensors, strict=True)


def test_a_stream_shorter_than_batches_per_epoch_still_updates_on_its_last_group():
    # 5 mini-batches in groups of 2: updates after 2, 4 and 5, as a loader of length 5 gives
    stream = _trainer(nn.CrossEntropyLoss(), accumulate_grad_batches=2)
    with pytest.warns(
        UserWarning, match="train ran out after 5 mini-batches of batches_per_epoch=6"
    ):
        stream.fit(loader(Stream()), epochs=2, batches_per_epoch=6, verbose=0)
    mapped = _trainer(nn.CrossEntropyLoss(), accumulate_grad_batches=2)
    mapped.fit(loader(tiny_data(20)), epochs=2, verbose=0)
    assert stream.state.global_step == mapped.state.global_step == 6
    for a, b in zip(stream.model.parameters(), mapped.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("max_batches", [0, -1, 1.5])
def test_evaluate_and_predict_refuse_a_max_batches_below_1_instead_of_returning_nan(max_batches):
    trainer = _trainer(metrics=[labpkg.SegmentationMetrics(3)])
    with pytest.raises(ValueError, match="max_batches must be an integer >= 1"):
        trainer.evaluate(loader(tiny_data(8)), max_batches=max_batches)
    with pytest.raises(ValueError, match="max_batches must be an integer >= 1"):
        trainer.predict(loader(tiny_data(8)), max_batches=max_batches)
    assert trainer.evaluate(loader(tiny_data(8)), max_batches=np.int64(1))["loss"] > 0


def test_the_update_that_closes_a_short_stream_is_saved_and_evaluated_at_the_epochs_end(
    tmp_path,
):
    # 5 mini-batches in groups of 2: updates 1, 2 and 3 per epoch, the third after the stream
    # ran out; save_freq=3 saves it at once, not after the next epoch's first mini-batch
    saves = []

    class Spy(labpkg.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.at = (self.trainer.state.epoch, batch)

    spy = Spy()
    every_3 = labpkg.ModelCheckpoint(str(tmp_path / "c.pt"), save_freq=3, monitor="loss")
    every_3._saved = lambda path, epoch, logs: saves.append((epoch, spy.at))
    evaluate_3 = labpkg.EvaluateEvery(loader(tiny_data(4)), every=3, at_start=False)
    stream = _trainer(nn.CrossEntropyLoss(), accumulate_grad_batches=2)
    with pytest.warns(UserWarning, match="train ran out"):
        stream.fit(loader(Stream()), epochs=2, batches_per_epoch=6, verbose=0,
                   callbacks=[every_3, evaluate_3, spy])  # fmt: skip
    assert saves == [(0, (0, 4)), (1, (1, 4))]  # each epoch's end, after its last mini-batch
    assert evaluate_3.updates == [3, 6]  # evaluated then too, both epochs
    assert evaluate_3.samples == [20, 40]  # not one mini-batch into the next epoch

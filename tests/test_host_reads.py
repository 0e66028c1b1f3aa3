"""No per-batch host sync in the training path: host reads per epoch do not grow with batches.

A host read (``.item()``, ``bool(tensor)``, ``.tolist()``: ``aten._local_scalar_dense``) makes
the CPU wait for the GPU. The design promises, per pass over data (a training epoch or a
validation): the first mini-batch's input checks, one read for the summed loss, and for each
metric one read for its out-of-range label count plus one per value it logs. Nothing per
mini-batch.
"""

from __future__ import annotations

import pytest
import torch
from helpers import loader, tiny_data, tiny_model
from torch.utils._python_dispatch import TorchDispatchMode

import labpkg

FIRST_BATCH_CHECKS = 3  # at most: the target's labels, all-ignored, a metric's labels


class HostReads(TorchDispatchMode):
    """Counts the op behind ``.item()``, ``bool(tensor)`` and ``.tolist()``."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(autouse=True)
def reads_priced_as_on_a_gpu(monkeypatch):
    # on a CPU the metrics may look at the labels' range each batch (free there); on a GPU a
    # look is a sync, and this test, run on a CPU, stands in for the GPU
    monkeypatch.setattr(labpkg.nn.confusion, "host_reads_are_free", lambda device: False)


def _reads(loss, n: int, epochs: int = 2, **trainer_options) -> tuple[int, dict]:
    model = tiny_model()
    trainer = labpkg.Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        loss,
        metrics=[labpkg.SegmentationMetrics(3)],
        device="cpu",
        **trainer_options,
    )
    train, val = loader(tiny_data(n)), loader(tiny_data(8, seed=1))
    with HostReads() as reads:
        history = trainer.fit(train, epochs=epochs, validation_data=val, verbose=0)
    return reads.count, history.history


LOSSES = {
    "CrossEntropyLoss": lambda: labpkg.CrossEntropyLoss(),
    "CrossEntropyLoss(ignore_index)": lambda: labpkg.CrossEntropyLoss(ignore_index=255),
    "DiceLoss": lambda: labpkg.DiceLoss(),
    "DiceCELoss": lambda: labpkg.DiceCELoss(),
    "JaccardLoss(class_weights)": lambda: labpkg.JaccardLoss(class_weights=[1.0, 2.0, 2.0]),
    "torch.nn.CrossEntropyLoss": lambda: torch.nn.CrossEntropyLoss(),
}


@pytest.mark.parametrize("make_loss", LOSSES.values(), ids=LOSSES.keys())
def test_host_reads_per_epoch_do_not_grow_with_the_number_of_mini_batches(make_loss):
    few, _ = _reads(make_loss(), n=8)  # 2 mini-batches per epoch
    many, logs = _reads(make_loss(), n=48)  # 12 mini-batches per epoch
    assert few == many
    metric_values = len([k for k in logs if k != "loss" and not k.startswith("val_")])
    per_pass = FIRST_BATCH_CHECKS + 1 + (1 + metric_values)  # one metric object
    assert many <= 2 * (2 * per_pass + 1)  # 2 epochs: training, validation, weights check


def test_accumulation_adds_no_host_reads():
    plain, _ = _reads(labpkg.DiceCELoss(), n=48)
    accumulated, _ = _reads(labpkg.DiceCELoss(), n=48, accumulate_grad_batches=3)
    assert accumulated == plain


def test_checks_stay_on_when_the_loss_is_used_outside_the_trainer():
    loss = labpkg.DiceCELoss()
    _reads(loss, n=8)
    assert loss.validate_args  # the Trainer turned checks off inside fit only
    with pytest.raises(ValueError, match="labels outside"):
        loss(torch.zeros(1, 3, 2, 2), torch.full((1, 2, 2), 7))

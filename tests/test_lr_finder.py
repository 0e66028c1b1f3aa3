"""The learning-rate range test: what it measures, and that it leaves nothing changed."""

from __future__ import annotations

import copy
import math
import random

import numpy as np
import pytest
import torch
from helpers import loader, tiny_data, tiny_trainer

import labpkg
from labpkg.loop import lr_finder


def _trained_trainer():
    """A trainer after a real epoch: momentum buffers and counters are not at their start."""
    trainer = tiny_trainer(lr=0.05)
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.05, momentum=0.9)
    trainer.fit(loader(tiny_data(16)), epochs=1, verbose=0)
    return trainer


def _everything(trainer, data_loader):
    return {
        "model": copy.deepcopy(trainer.model.state_dict()),
        "optimizer": copy.deepcopy(trainer.optimizer.state_dict()),
        "state": copy.deepcopy(trainer.state),
        "rng": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state()[1].copy(),  # noqa: NPY002 (the global generator)
        "loader": data_loader.generator.get_state(),
        "training": trainer.model.training,
    }


def _assert_same(before, after):
    assert before["model"].keys() == after["model"].keys()
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key
    torch.testing.assert_close(before["optimizer"], after["optimizer"], rtol=0, atol=0)
    assert before["state"] == after["state"]
    assert torch.equal(before["rng"], after["rng"])
    assert before["python"] == after["python"]
    assert (before["numpy"] == after["numpy"]).all()
    assert torch.equal(before["loader"], after["loader"])
    assert before["training"] == after["training"]


class _Jittered(torch.utils.data.Dataset):
    """Augmentation that draws from Python's and NumPy's generators, as user code does."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        image, mask = self.data[i]
        return image * (1 + 0.01 * random.random() + 0.01 * np.random.rand()), mask  # noqa: NPY002


def test_the_range_test_restores_model_optimizer_counters_and_random_state_bit_for_bit():
    trainer = _trained_trainer()
    generator = torch.Generator().manual_seed(3)
    data = loader(_Jittered(tiny_data(16)), shuffle=True, generator=generator)
    trainer.model.eval()  # a mode the test must give back too
    before = _everything(trainer, data)
    result = labpkg.lr_find(trainer, data, num_updates=20)
    assert len(result.lrs) > 2
    _assert_same(before, _everything(trainer, data))
    assert all(p.grad is None for p in trainer.model.parameters())


def test_training_after_the_range_test_equals_training_without_it():
    runs = []
    for with_finder in (False, True):
        torch.manual_seed(0)
        trainer = _trained_trainer()
        data = loader(tiny_data(16), shuffle=True)  # shuffles from torch's global generator
        if with_finder:
            labpkg.lr_find(trainer, data, num_updates=12)
        trainer.fit(data, epochs=1, verbose=0)
        runs.append(trainer.model.state_dict())
    for key, value in runs[0].items():
        assert torch.equal(value, runs[1][key]), key


def test_rates_grow_by_a_constant_factor_from_start_to_end():
    result = labpkg.lr_find(tiny_trainer(), loader(tiny_data(8)), 1e-5, 1e-1, num_updates=9)
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1e-1)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:], strict=False)]
    assert ratios == pytest.approx([10**0.5] * 8)
    assert len(result.losses) == len(result.smoothed) == 9  # the loader (2 batches) cycled


def test_the_test_stops_once_the_loss_blows_up():
    result = labpkg.lr_find(tiny_trainer(), loader(tiny_data(8)), 1e-3, 1e6, num_updates=60)
    assert len(result.lrs) < 60
    last = result.smoothed[-1]
    assert not math.isfinite(result.losses[-1]) or last > 4 * min(result.smoothed)


def test_the_suggestion_is_the_steepest_fall_before_the_minimum():
    lrs = [10.0**e for e in range(-6, 1)]  # 1e-6 ... 1
    smoothed = [2.0, 1.95, 1.9, 1.2, 0.7, 0.65, 3.0]  # falls fastest around 1e-3
    assert lr_finder._steepest(lrs, smoothed) == pytest.approx(1e-3)
    assert lr_finder._steepest(lrs, [1.0, 2, 3, 4, 5, 6, 7]) == lrs[0]  # never fell


def test_the_smoothed_loss_is_a_bias_corrected_moving_average_of_the_losses():
    result = labpkg.lr_find(tiny_trainer(), loader(tiny_data(8)), num_updates=12, smoothing=0.8)
    average, expected = 0.0, []
    for t, loss in enumerate(result.losses, start=1):
        average = 0.8 * average + 0.2 * loss
        expected.append(average / (1 - 0.8**t))
    assert result.smoothed == pytest.approx(expected, rel=1e-12)
    assert result.smoothed[0] == pytest.approx(result.losses[0])  # corrected: no pull to 0


def test_an_error_mid_test_still_restores_everything():
    trainer = _trained_trainer()
    good = loader(tiny_data(8), generator=torch.Generator().manual_seed(1))
    before = _everything(trainer, good)

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            if i == 5:
                raise RuntimeError("disk gone")
            return tiny_data(8)[i]

    with pytest.raises(RuntimeError, match="disk gone"):
        labpkg.lr_find(trainer, loader(Broken()), num_updates=10)
    _assert_same(before, _everything(trainer, good))


class _Triples(torch.utils.data.Dataset):
    """Items of (image, mask, index): one too many for a training batch."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return (*tiny_data(8)[i], i)


def test_batches_that_are_not_pairs_get_the_trainers_clear_error_and_change_nothing():
    trainer = _trained_trainer()
    good = loader(tiny_data(8), generator=torch.Generator().manual_seed(1))
    before = _everything(trainer, good)
    with pytest.raises(TypeError, match=r"must be a pair \(inputs, target\).*list of 3 items"):
        labpkg.lr_find(trainer, loader(_Triples()), num_updates=10)
    _assert_same(before, _everything(trainer, good))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"start_lr": 0.0}, "0 < start_lr < end_lr"), ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr"),
     ({"num_updates": 2}, r"num_updates .* integer >= 3"), ({"smoothing": 1.0}, "smoothing"),
     ({"diverge": 1.0}, "diverge must be > 1")],
)  # fmt: skip
def test_bad_settings_name_the_argument(options, message):
    with pytest.raises(ValueError, match=message):
        labpkg.lr_find(tiny_trainer(), loader(tiny_data(8)), **options)

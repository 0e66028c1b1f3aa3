"""``EvaluateEvery``: evaluations at fixed update counts that leave training as it was."""

from __future__ import annotations

import time

import pytest
import torch
from helpers import loader, tiny_data, tiny_model
from torch import nn
from torch.utils.data import DataLoader, Dataset

import labpkg


def _trainer(model: nn.Module, **kwargs) -> labpkg.Trainer:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return labpkg.Trainer(model, optimizer, nn.CrossEntropyLoss(), device="cpu", **kwargs)


def test_it_evaluates_at_multiples_of_k_updates_from_zero():
    every = labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=3)
    trainer = _trainer(tiny_model())
    trainer.fit(loader(tiny_data(24), 4), epochs=2, callbacks=[every], verbose=0)  # 12 updates
    assert every.updates == [0, 3, 6, 9, 12]
    assert every.samples == [0, 12, 24, 36, 48]
    assert sorted(every.history) == ["loss"] and len(every.history["loss"]) == 5
    assert every.seconds == sorted(every.seconds) and every.seconds[0] == 0.0


def test_it_counts_updates_not_mini_batches_under_accumulation():
    every = labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=2, at_start=False)
    trainer = _trainer(tiny_model(), accumulate_grad_batches=3)
    trainer.fit(loader(tiny_data(24), 2), epochs=1, callbacks=[every], verbose=0)  # 12 batches
    assert trainer.state.global_step == 4
    assert every.updates == [2, 4]


def test_the_results_are_what_evaluate_returns_at_that_point():
    val = loader(tiny_data(8, seed=1), 4)
    every = labpkg.EvaluateEvery(val, every=6)
    trainer = _trainer(tiny_model(), metrics=[labpkg.MeanIoU(3)])
    trainer.fit(loader(tiny_data(24), 4), epochs=1, callbacks=[every], verbose=0)
    assert every.updates == [0, 6]
    final = trainer.evaluate(val)  # the weights after update 6
    assert every.history["loss"][-1] == pytest.approx(final["loss"])
    assert every.history["mean_iou"][-1] == pytest.approx(final["mean_iou"])


def _final_weights(with_evaluations: bool) -> list[torch.Tensor]:
    """Two epochs on a shuffled loader (order drawn from torch's global generator) with a
    BatchNorm model: a skipped restore of the generators or of train mode changes them."""
    model = tiny_model(batch_norm=True)
    torch.manual_seed(1)
    callbacks = [labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=2)] if with_evaluations else []
    train = loader(tiny_data(24), 4, shuffle=True)
    _trainer(model).fit(train, epochs=2, callbacks=callbacks, verbose=0)
    return [t.detach().clone() for t in model.state_dict().values()]


def test_training_is_the_same_with_and_without_the_evaluations():
    for plain, watched in zip(_final_weights(False), _final_weights(True), strict=True):
        assert torch.equal(plain, watched)


class ModeRecorder(labpkg.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.modes: list[tuple[bool, bool]] = []

    def on_train_batch_begin(self, batch, logs=None):
        model = self.trainer.model
        self.modes.append((model.training, model.stem.training))


def test_every_module_gets_its_own_mode_back():
    model = tiny_model(batch_norm=True)
    recorder = ModeRecorder()

    class FreezeFirstBlock(labpkg.Callback):  # e.g. frozen BatchNorm statistics
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:  # after the Trainer's model.train() at the start of the epoch
                model.stem.eval()

    every = labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=1)
    callbacks = [FreezeFirstBlock(), every, recorder]
    _trainer(model).fit(loader(tiny_data(16), 4), epochs=1, callbacks=callbacks, verbose=0)
    assert every.updates == [0, 1, 2, 3, 4]
    assert recorder.modes == [(True, False)] * 4


class SlowData(Dataset):
    """Each sample takes ``delay`` seconds to read."""

    def __init__(self, delay: float) -> None:
        self.data, self.delay = tiny_data(4), delay

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        time.sleep(self.delay)
        return self.data[i]


def test_the_time_of_the_evaluations_is_left_out_of_the_seconds():
    every = labpkg.EvaluateEvery(DataLoader(SlowData(0.05), batch_size=4), every=2)
    start = time.perf_counter()
    _trainer(tiny_model()).fit(loader(tiny_data(16), 4), epochs=1, callbacks=[every], verbose=0)
    elapsed = time.perf_counter() - start
    evaluating = len(every.updates) * 4 * 0.05  # at least: 3 evaluations of 4 slow samples
    assert every.updates == [0, 2, 4]
    assert every.seconds[-1] < elapsed - evaluating


def test_its_records_survive_a_checkpoint_round_trip():
    every = labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=2)
    _trainer(tiny_model()).fit(loader(tiny_data(16), 4), epochs=1, callbacks=[every], verbose=0)
    restored = labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=2)
    restored.load_state_dict(every.state_dict())
    assert restored.state_dict() == every.state_dict()


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_every_must_be_a_positive_whole_number_of_updates(every):
    with pytest.raises(ValueError, match="every"):
        labpkg.EvaluateEvery(loader(tiny_data(8), 4), every=every)


class Noise:
    """A transform with a generator of its own, as ``RandomFlipCrop(generator=g)`` has."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image + 0.1 * torch.randn(image.shape, generator=self.generator)


class Transformed(Dataset):
    def __init__(self, data, transform) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        image, mask = self.data[i]
        return self.transform(image), mask


def test_a_transform_shared_with_the_training_data_draws_as_without_evaluations():
    def final_weights(with_evaluations: bool) -> list[torch.Tensor]:
        noise = Noise(torch.Generator().manual_seed(3))  # one transform, both loaders
        train = DataLoader(Transformed(tiny_data(16), noise), batch_size=4)
        val = DataLoader(Transformed(tiny_data(8, seed=1), noise), batch_size=4)
        every = [labpkg.EvaluateEvery(val, every=2)] if with_evaluations else []
        model = tiny_model()
        _trainer(model).fit(train, epochs=2, callbacks=every, verbose=0)
        return [t.detach().clone() for t in model.state_dict().values()]

    for plain, watched in zip(final_weights(False), final_weights(True), strict=True):
        assert torch.equal(plain, watched)

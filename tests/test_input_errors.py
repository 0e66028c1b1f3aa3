"""Common mistakes get a clear error naming the argument and the fix, or are handled correctly.

Each case is what a new user tends to write first: masks and images as PIL and NumPy give
them, batches of the wrong form, a list instead of a DataLoader, a loss class, one callback,
NumPy numbers, options that cannot work. None may end in a raw torch traceback or, worse, in
a silently wrong number.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import loader, tiny_data, tiny_model
from torch.utils.data import Dataset, IterableDataset, TensorDataset

import labpkg
from labpkg.callbacks import (
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
)


def _trainer(loss="cross_entropy", model=None, **kwargs):
    model = model or tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    metrics = [labpkg.SegmentationMetrics(3)]
    return labpkg.Trainer(model, opt, loss, metrics=metrics, device="cpu", **kwargs)


def _fit(data, **kwargs):
    trainer = _trainer()
    kwargs.setdefault("verbose", 0)
    trainer.fit(data, **kwargs)
    return trainer


def _converted(images=None, masks=None):
    x, y = tiny_data(8).tensors
    return TensorDataset(x if images is None else images(x), y if masks is None else masks(y))


# ------------------------------------------------------------------ data as PIL/NumPy give it
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_integer_masks_of_any_dtype_train_exactly_like_int64_masks(dtype):
    reference = _fit(loader(_converted()))
    trainer = _fit(loader(_converted(masks=lambda y: y.to(dtype))))
    assert trainer.history.history == reference.history.history
    for a, b in zip(trainer.model.parameters(), reference.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_float64_images_are_converted_to_float32():
    reference = _fit(loader(_converted()))
    trainer = _fit(loader(_converted(images=lambda x: x.double())))
    assert trainer.history.history == reference.history.history


def test_uint8_images_are_refused_with_how_to_scale_them():
    data = loader(_converted(images=lambda x: (x * 255).to(torch.uint8)))
    with pytest.raises(TypeError, match=r"inputs are torch.uint8 images.*255"):
        _fit(data)


def test_float_masks_are_refused_with_how_to_convert_them():
    data = loader(_converted(masks=lambda y: y.float()))
    with pytest.raises(TypeError, match=r"target holds torch.float32 values.*integer class ids"):
        _fit(data)


# --------------------------------------------------------------------------- batch forms
class DictSamples(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {"image": torch.rand(3, 8, 8), "mask": torch.zeros(8, 8, dtype=torch.long)}


@pytest.mark.parametrize(
    "dataset",
    [
        DictSamples(),
        labpkg.SyntheticShapes(4, labpkg.ShapesConfig(size=16), return_index=True),
    ],
    ids=["dict samples", "3-tuples (SyntheticShapes with return_index)"],
)
def test_batches_other_than_pairs_get_one_message_saying_what_is_expected(dataset):
    expected = r"each batch must be a pair \(inputs, target\): images \(B, C, H, W\)"
    with pytest.raises(TypeError, match=expected):
        _fit(loader(dataset))
    with pytest.raises(TypeError, match=expected):
        _trainer().evaluate(loader(dataset))


@pytest.mark.parametrize(
    "data", [list(loader(tiny_data(8))), tiny_data(8).tensors[0]], ids=["list", "tensor"]
)
def test_something_other_than_a_dataloader_is_refused_with_how_to_wrap_it(data):
    with pytest.raises(TypeError, match=r"train must be a torch DataLoader.*DataLoader\(dataset"):
        _fit(data)
    with pytest.raises(TypeError, match="data must be a torch DataLoader"):
        _trainer().evaluate(data)


class Stream(IterableDataset):
    def __iter__(self):
        yield from zip(*tiny_data(8).tensors, strict=True)


def test_an_iterable_dataset_needs_batches_per_epoch_and_then_trains():
    with pytest.raises(ValueError, match="no length.*pass batches_per_epoch"):
        _fit(loader(Stream()))
    trainer = _fit(loader(Stream()), epochs=2, batches_per_epoch=2)
    assert trainer.state.global_step == 4


def test_an_empty_validation_loader_is_an_error_not_nan():
    empty = loader(tiny_data(0))
    with pytest.raises(ValueError, match="validation_data yields no batches"):
        _fit(loader(tiny_data(8)), validation_data=empty)
    with pytest.raises(ValueError, match="data yields no batches"):
        _trainer().evaluate(empty)


# ------------------------------------------------------------------------- objects and types
def test_a_loss_class_instead_of_an_instance_says_to_call_it():
    with pytest.raises(TypeError, match=r"pass CrossEntropyLoss\(\), not CrossEntropyLoss"):
        _trainer(loss=torch.nn.CrossEntropyLoss)


def test_a_loss_that_gives_one_value_per_pixel_says_use_reduction_mean():
    trainer = _trainer(loss=torch.nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(ValueError, match="one number per mini-batch.*reduction='mean'"):
        trainer.fit(loader(tiny_data(8)), verbose=0)


def test_a_single_callback_instead_of_a_list_says_wrap_it():
    with pytest.raises(TypeError, match=r"callbacks must be a list: pass callbacks=\["):
        _fit(loader(tiny_data(8)), callbacks=EarlyStopping())


def test_numpy_numbers_are_accepted_where_python_numbers_are():
    trainer = _fit(loader(tiny_data(8)), epochs=np.int64(2), batches_per_epoch=np.int32(1))
    assert trainer.state.global_step == 2
    model = tiny_model()
    opt = labpkg.get_optimizer("sgd", model.parameters(), lr=np.float32(0.1))
    assert isinstance(opt.param_groups[0]["lr"], float)
    labpkg.Trainer(model, opt, "cross_entropy", accumulate_grad_batches=np.int64(2))


def test_bad_loss_options_are_found_when_the_loss_is_built_or_at_its_first_call():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        labpkg.CrossEntropyLoss(reduction="avg")
    trainer = _trainer(loss=labpkg.CrossEntropyLoss(weight=[1.0, 2.0]))  # 3 classes
    with pytest.raises(ValueError, match=r"weight must be 3 numbers \(one per class\)"):
        trainer.fit(loader(tiny_data(8)), verbose=0)
    assert trainer.state.global_step == 0


def test_an_unknown_key_in_a_checkpoint_file_name_fails_before_training(tmp_path):
    trainer = _trainer()
    template = str(tmp_path / "{epoch}-{val_iou:.2f}.pt")
    with pytest.raises(KeyError, match=r"uses \['val_iou'\].*they hold epoch and"):
        trainer.fit(loader(tiny_data(8)), 2, loader(tiny_data(4)), [ModelCheckpoint(template)], 0)
    assert trainer.state.batches_seen == 0


# ------------------------------------------------------------- accepted silently until now
def test_an_optimizer_over_another_models_parameters_is_refused():
    model, other = tiny_model(), tiny_model(seed=1)
    opt = torch.optim.SGD(other.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer holds parameters that are not this model's"):
        labpkg.Trainer(model, opt, "cross_entropy")


def test_a_scheduler_built_on_another_optimizer_is_refused():
    trainer = _trainer()
    stray = torch.optim.SGD(tiny_model().parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(stray, step_size=1)
    with pytest.raises(ValueError, match="scheduler was built on another optimizer"):
        trainer.fit(loader(tiny_data(8)), callbacks=[LRSchedulerCallback(scheduler)], verbose=0)


def test_a_plateau_scheduler_watching_a_misspelt_key_warns_instead_of_never_stepping():
    trainer = _trainer()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer)
    callback = LRSchedulerCallback(plateau, monitor="val_los")
    with pytest.warns(UserWarning, match="'val_los' is not in the logs"):
        trainer.fit(loader(tiny_data(8)), 2, loader(tiny_data(4)), [callback], verbose=0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: EarlyStopping(patience=-1), "patience"),
        (lambda: ReduceLROnPlateau(patience=-1), "patience"),
        (lambda: ReduceLROnPlateau(cooldown=-1), "cooldown must be an integer >= 0"),
        (lambda: ReduceLROnPlateau(min_lr=-1e-3), "min_lr must be a finite number >= 0"),
    ],
    ids=["early patience", "plateau patience", "cooldown", "min_lr"],
)
def test_negative_patience_cooldown_or_min_lr_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_binary_dice_with_a_label_of_2_is_refused():
    with pytest.raises(ValueError, match="binary target must hold 0 and 1 only"):
        labpkg.DiceLoss(mode="binary")(torch.randn(2, 1, 4, 4), torch.full((2, 4, 4), 2))


# --------------------------- one integer rule (labpkg.core.checks.as_int) wherever a count is taken
@pytest.mark.parametrize(
    "make",
    [
        lambda n: labpkg.core.counting.batches_per_epoch(10, n),
        lambda n: labpkg.UNetConfig(base_width=n),
        lambda n: labpkg.EvaluateEvery(loader(tiny_data(4)), every=n),
        lambda n: labpkg.ShapesConfig(max_objects=n),
        lambda n: labpkg.EarlyStopping(patience=n),
    ],
    ids=["counting", "UNetConfig", "EvaluateEvery", "ShapesConfig", "EarlyStopping"],
)
def test_counts_take_numpy_integers_and_refuse_floats_and_bools_with_one_message(make):
    make(np.int64(2))  # a NumPy integer is a whole number
    for wrong in (2.5, True, -1):
        with pytest.raises(ValueError, match=r"must be an integer >= \d, got"):
            make(wrong)

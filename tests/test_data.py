"""Synthetic data, splits, loaders, and the book's arithmetic against real PyTorch counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, DistributedSampler

import labpkg
from labpkg.core.counting import batches_per_epoch, samples_per_rank


def test_same_seed_gives_same_samples_whatever_the_size():
    a_images, a_masks = labpkg.make_shapes(300, seed=3)
    b_images, b_masks = labpkg.make_shapes(40, seed=3)
    assert torch.equal(a_images[:40], b_images) and torch.equal(a_masks[:40], b_masks)
    c_images, _ = labpkg.make_shapes(40, seed=4)
    assert not torch.equal(b_images, c_images)


def test_images_and_masks_have_the_documented_shapes_and_ranges():
    images, masks = labpkg.make_shapes(64, labpkg.ShapesConfig(size=32), seed=0)
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32
    assert masks.shape == (64, 32, 32) and masks.dtype == torch.int64
    assert images.min() >= 0 and images.max() <= 1
    assert set(masks.unique().tolist()) == {0, 1, 2, 3}  # every class appears


def test_fewer_classes_limit_the_labels():
    _, masks = labpkg.make_shapes(50, labpkg.ShapesConfig(num_classes=2), seed=0)
    assert set(masks.unique().tolist()) == {0, 1}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"num_classes": 5}, "num_classes"), ({"size": 4}, "size"), ({"max_objects": 0}, "objects")],
)
def test_bad_shape_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        labpkg.ShapesConfig(**kwargs)


def test_unknown_difficulty_lists_the_choices():
    with pytest.raises(ValueError, match="easy"):
        labpkg.ShapesConfig.preset("impossible")


def test_split_is_disjoint_and_complete():
    ds = labpkg.SyntheticShapes(50, seed=0)
    train, val = labpkg.train_val_split(ds, val_fraction=0.2, seed=1)
    assert (len(train), len(val)) == (40, 10)
    assert set(train.indices).isdisjoint(val.indices)
    assert set(train.indices) | set(val.indices) == set(range(50))


def test_split_that_would_be_empty_is_rejected():
    with pytest.raises(ValueError, match="empty split"):
        labpkg.train_val_split(labpkg.SyntheticShapes(3), val_fraction=0.1)


def test_loaders_pin_memory_only_for_cuda():
    ds = labpkg.SyntheticShapes(10)
    train, val = labpkg.make_loaders(ds, ds, batch_size=4, device="cpu")
    assert not train.pin_memory and not val.pin_memory
    assert (len(train), len(val)) == (3, 3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_loader_batch_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="batch_size"):
        labpkg.make_loaders(labpkg.SyntheticShapes(4), batch_size=bad)


def test_empty_dataset_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        labpkg.make_loaders(labpkg.SyntheticShapes(0), batch_size=4)


def test_return_index_exposes_which_samples_a_batch_holds():
    ds = labpkg.SyntheticShapes(6, return_index=True)
    _, _, index = next(iter(DataLoader(ds, batch_size=6)))
    assert index.tolist() == list(range(6))


def test_seed_worked_example():
    assert labpkg.batches_per_epoch(1000, 100) == 10
    assert labpkg.total_updates(1000, 100, epochs=5) == 50


@given(n=st.integers(1, 300), batch=st.integers(1, 64), drop_last=st.booleans())
def test_batches_per_epoch_equals_len_of_a_real_loader(n, batch, drop_last):
    loader = DataLoader(range(n), batch_size=batch, drop_last=drop_last)
    assert batches_per_epoch(n, batch, drop_last) == len(loader)


@given(
    n=st.integers(1, 200),
    batch=st.integers(1, 16),
    world=st.integers(1, 5),
    drop_last=st.booleans(),
)
def test_per_rank_counts_equal_a_real_distributed_sampler(n, batch, world, drop_last):
    for rank in range(world):
        sampler = DistributedSampler(
            range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last
        )
        assert samples_per_rank(n, world, drop_last) == len(list(sampler))
        loader = DataLoader(range(n), batch_size=batch, sampler=sampler, drop_last=drop_last)
        assert batches_per_epoch(n, batch, drop_last, world) == len(loader)


def test_spec_d1_distributed_sampler_case():
    got = list(DistributedSampler(range(10), num_replicas=4, rank=2, shuffle=False))
    assert got == [2, 6, 0] and samples_per_rank(10, 4) == 3
    got = list(DistributedSampler(range(10), num_replicas=4, rank=2, shuffle=False, drop_last=True))
    assert got == [2, 6] and samples_per_rank(10, 4, drop_last=True) == 2
    assert batches_per_epoch(10, 4) == 3 and batches_per_epoch(10, 4, drop_last=True) == 2


def test_accumulation_and_global_batch_arithmetic():
    assert labpkg.updates_per_epoch(1000, 100, accumulate=3) == 4
    assert labpkg.effective_batch_size(32, accumulate=4, world_size=2) == 256


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"n": -1}, {"world_size": 0}])
def test_arithmetic_rejects_bad_counts(bad):
    args = {"n": 10, "batch_size": 2, "world_size": 1} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        batches_per_epoch(**args)


def test_validation_can_read_the_same_samples_from_an_unaugmented_copy():
    augmented = labpkg.SyntheticShapes(10, seed=0)
    plain = torch.utils.data.TensorDataset(torch.arange(10))  # stands for the same samples
    train, val = labpkg.train_val_split(augmented, 0.3, seed=1, val_dataset=plain)
    assert train.dataset is augmented and val.dataset is plain
    assert sorted(train.indices + val.indices) == list(range(10))  # disjoint, all covered
    assert [val[i][0].item() for i in range(len(val))] == val.indices
    with pytest.raises(ValueError, match="val_dataset has 9 samples and dataset 10"):
        labpkg.train_val_split(
            augmented, 0.3, val_dataset=torch.utils.data.TensorDataset(torch.arange(9))
        )


def test_split_first_then_augment_only_the_training_part():
    data = labpkg.SyntheticShapes(10, labpkg.ShapesConfig(size=16), seed=0)
    train, val = labpkg.train_val_split(data, 0.3, seed=1)
    reads = []

    def flip(image, mask):
        reads.append(1)
        return image.flip(-1), mask.flip(-1)

    augmented = labpkg.Transformed(train, flip)
    assert len(augmented) == len(train) == 7
    image, mask = augmented[3]
    assert torch.equal(image, train[3][0].flip(-1)) and torch.equal(mask, train[3][1].flip(-1))
    assert len(reads) == 1  # the transform runs at each read, not once up front
    assert all(torch.equal(val[i][0], data[val.indices[i]][0]) for i in range(len(val)))
    drawn = labpkg.Transformed(train, labpkg.RandomFlipCrop())
    torch.manual_seed(0)
    assert any(not torch.equal(drawn[i][1], drawn[i][1]) for i in range(len(drawn)))
    with pytest.raises(TypeError, match="transform must be callable"):
        labpkg.Transformed(train, "flip")

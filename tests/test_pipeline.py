"""labpkg.data.pipeline: the data-pipeline chapter's datasets load in spawned workers too."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, StackDataset

import labpkg


def test_augmented_flips_image_and_mask_together():
    torch.manual_seed(0)
    base = labpkg.SyntheticShapes(8, labpkg.ShapesConfig(size=16), seed=0)
    data = labpkg.Augmented(base, noise=0.0)
    for i in range(len(data)):
        image, mask = data[i]
        plain_image, plain_mask = base[i]
        flipped = not torch.equal(mask, plain_mask)
        assert torch.equal(mask, plain_mask.flip(-1) if flipped else plain_mask)
        assert torch.equal(image, plain_image.flip(-1) if flipped else plain_image)


def test_worker_draws_repeat_with_the_seed_and_differ_between_workers():
    def draws(seed):
        loader = DataLoader(
            labpkg.WorkerDraws(8), batch_size=4, num_workers=2,
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        return torch.cat(list(loader))

    first = draws(0)
    assert torch.equal(first, draws(0))
    by_worker = [first[first[:, 0] == w, 1] for w in (0, 1)]
    assert not torch.equal(by_worker[0], by_worker[1])
    assert labpkg.WorkerDraws(2)[0][0] == -1  # in the main process


def test_both_datasets_load_in_spawned_workers():
    # spawn (macOS, Windows) rebuilds the dataset in each worker by importing its class by
    # name: a class defined in a notebook's __main__ would fail here
    base = labpkg.SyntheticShapes(8, labpkg.ShapesConfig(size=16), seed=0)
    both = StackDataset(labpkg.Augmented(base), labpkg.WorkerDraws(8))
    loader = DataLoader(both, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    batches = list(loader)
    assert len(batches) == 2
    (images, masks), draws = batches[0]
    assert images.shape == (4, 3, 16, 16) and masks.shape == (4, 16, 16)
    assert {int(b[1][0, 0]) for b in batches} == {0, 1}  # both workers made a batch

"""Datasets for the data-pipeline chapter: per-sample work done while loading.

They live in the package, not in a notebook, because DataLoader workers started by *spawn*
(macOS, Windows) or *forkserver* (Linux from Python 3.14) rebuild the dataset by importing its
class by name: a class defined in a notebook's ``__main__`` cannot be found there.
"""

from __future__ import annotations

import random

import torch
from torch.utils.data import Dataset, get_worker_info

__all__ = ["Augmented", "WorkerDraws"]


class Augmented(Dataset):
    """Random horizontal flips and a little noise on every sample of ``dataset``.

    The same flip goes to the image (C, H, W) and its mask (H, W); the noise only to the image.
    The draws use torch's global generator: ``labpkg.seed_everything`` seeds it in the main
    process, and the DataLoader seeds each worker's copy itself.

    Args:
        dataset: yields ``(image, mask)`` pairs.
        noise: standard deviation of the Gaussian noise added to the image (default 0.02).

    Example:
        >>> import labpkg
        >>> data = Augmented(labpkg.SyntheticShapes(4, labpkg.ShapesConfig(size=16)))
        >>> image, mask = data[0]
        >>> tuple(image.shape), tuple(mask.shape), len(data)
        ((3, 16, 16), (16, 16), 4)
    """

    def __init__(self, dataset: Dataset, noise: float = 0.02) -> None:
        self.dataset, self.noise = dataset, noise

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.dataset[index]
        if torch.rand(()) < 0.5:  # width is the last axis of both
            image, mask = image.flip(-1), mask.flip(-1)
        return image + self.noise * torch.randn_like(image), mask


class WorkerDraws(Dataset):
    """Each sample: the id of the worker that made it, and a draw from Python's ``random`` there.

    Shows that the DataLoader seeds Python's ``random`` in each worker (no seeding code here).
    In the main process (``num_workers=0``) the worker id is -1.

    Args:
        size: number of samples (default 8).

    Example:
        >>> WorkerDraws(3)[0].shape
        torch.Size([2])
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        info = get_worker_info()
        worker = -1 if info is None else info.id
        return torch.tensor([worker, random.random()], dtype=torch.float64)

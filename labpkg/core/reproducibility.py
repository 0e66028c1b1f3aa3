"""Seeding: the same seed gives the same run, bit for bit, on the same machine and software.

Four random number generators decide a training run: Python's ``random``, NumPy's, PyTorch's
(CPU and every GPU), and, for a DataLoader with workers, each worker's copies of all three.
``seed_everything`` seeds the first three and returns a generator for the loader; the
DataLoader seeds its workers' three itself, from a base seed it draws from that generator
each epoch (``torch/utils/data/_utils/worker.py``), so augmentations in workers repeat too.
(Some GPU kernels are not deterministic at all; ``deterministic=True`` asks PyTorch for
deterministic ones.)

Some generators belong to the data pipeline itself: a loader's ``generator=``, a sampler's
(``RandomSampler(ds, generator=g)``), an augmentation's (``RandomFlipCrop(generator=g)``).
``data_generators`` finds them, so a checkpoint or the LR finder can save and put back
their states too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from labpkg.core.checks import as_int

__all__ = ["seed_everything", "data_generators"]


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a generator for the DataLoader.

    Args:
        seed: any integer >= 0.
        deterministic: also ask PyTorch for deterministic algorithms (slower on GPUs; raises
            for an operation that has no deterministic version).

    Returns:
        A ``torch.Generator`` seeded with ``seed``: pass it as ``DataLoader(generator=...)``
        so the shuffle order does not depend on what else drew random numbers before.

    Example:
        >>> g = seed_everything(3)
        >>> a = torch.rand(1); _ = seed_everything(3); bool(torch.rand(1) == a)
        True
    """
    seed = as_int(seed, "seed", 0)
    random.seed(seed)
    # the global NumPy generator that older code and libraries draw from (32-bit seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(deterministic)
    return torch.Generator().manual_seed(seed)


#: The attributes through which a loader reaches the parts that may own a generator: its
#: sampler, its dataset (and a Subset's or a wrapper's dataset, a ConcatDataset's datasets)
#: and a dataset's transforms (a torchvision-style Compose keeps a list in ``transforms``).
PARTS = ("sampler", "batch_sampler", "dataset", "datasets", "transform", "transforms",
         "target_transform")  # fmt: skip


def data_generators(loader: Any) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` that ``loader``, its sampler and its dataset's transforms own.

    Looks at the attributes of the loader and, through ``PARTS``, of its sampler, dataset and
    transforms. A generator shared by several parts is listed once, where it is met first.

    Args:
        loader: a DataLoader (or any object with such attributes).

    Returns:
        The generators by where they sit, in a fixed order, e.g.
        ``{"loader.generator": g, "loader.dataset.transform.generator": g2}``.

    Example:
        >>> from torch.utils.data import DataLoader, RandomSampler, TensorDataset
        >>> data = TensorDataset(torch.arange(4))
        >>> g = torch.Generator()
        >>> list(data_generators(DataLoader(data, sampler=RandomSampler(data, generator=g))))
        ['loader.sampler.generator']
    """
    found: dict[str, torch.Generator] = {}
    _visit(loader, "loader", found, seen=set())
    return found


def _visit(obj: Any, where: str, found: dict, seen: set) -> None:
    if id(obj) in seen or not hasattr(obj, "__dict__"):
        return  # visited (a BatchSampler's sampler is the loader's), or a plain value
    seen.add(id(obj))
    attributes = vars(obj)
    for name, value in attributes.items():
        if isinstance(value, torch.Generator) and all(value is not g for g in found.values()):
            found[f"{where}.{name}"] = value
    for name in PARTS:
        value = attributes.get(name)
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                _visit(item, f"{where}.{name}[{i}]", found, seen)
        elif value is not None:
            _visit(value, f"{where}.{name}", found, seen)

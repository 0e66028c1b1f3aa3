"""Seeding: the same seed gives the same run, bit for bit, on the same machine and software.

Four random number generators decide a training run: Python's ``random``, NumPy's, PyTorch's
(CPU and every GPU), and, for a DataLoader with workers, each worker's copies of all three.
``seed_everything`` seeds the first three and returns a generator for the loader; the
DataLoader seeds its workers' three itself, from a base seed it draws from that generator
each epoch (``torch/utils/data/_utils/worker.py``), so augmentations in workers repeat too.
(Some GPU kernels are not deterministic at all; ``deterministic=True`` asks PyTorch for
deterministic ones.)
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything"]


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
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    # the global NumPy generator that older code and libraries draw from (32-bit seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(deterministic)
    return torch.Generator().manual_seed(seed)

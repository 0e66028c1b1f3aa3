"""Counting integers into a fixed number of bins, without reading anything back to the host.

``torch.bincount`` sizes its output from the largest value, which it reads back to the host:
on a GPU, a wait for every queued kernel, each mini-batch. The confusion matrix knows its
bins (C·C), so it counts with these instead.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["count_bins", "add_counts", "index_errors_are_raised"]


def count_bins(index: torch.Tensor, bins: int) -> torch.Tensor:
    """How many times each value in [0, ``bins``) occurs in the 1-D ``index``: (bins,) int64.

    ``torch.bincount`` without its two extra reads (the min, to refuse a negative index, and
    the max, read back to the host to size the output: a GPU sync each batch).

    Example:
        >>> count_bins(torch.tensor([0, 0, 3]), 5).tolist()
        [2, 0, 0, 1, 0]
    """
    return add_counts(torch.zeros(bins, dtype=torch.long, device=index.device), index)


def add_counts(counts: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Add one to ``counts[i]`` for each ``i`` in the 1-D ``index``, in place; returns ``counts``.

    On a CPU, ``index_add_`` of a broadcast 1 (no (N,) tensor of ones, ``_ones``), which raises
    ``IndexError`` for an index outside ``counts``; elsewhere ``scatter_add_``, for indices
    known to lie inside (a GPU checks them with a device-side assert, which ends the process).

    Example:
        >>> add_counts(torch.tensor([1, 0, 0]), torch.tensor([2, 2])).tolist()
        [1, 0, 2]
    """
    if index_errors_are_raised(index.device):
        return counts.index_add_(0, index, _ones(index.numel()))
    return counts.scatter_add_(0, index, torch.ones_like(index))


def index_errors_are_raised(device: torch.device) -> bool:
    """Does an index outside a tensor raise a Python error here (a CPU), rather than a
    device-side assert that ends the process (a GPU)?"""
    return device.type == "cpu"


@functools.lru_cache(maxsize=64)
def _ones(n: int) -> torch.Tensor:
    """(n,) int64 ones: one number broadcast, so no memory. Cached by length, because building
    the view is a tensor operation, and the confusion matrix counts chunks of a few lengths
    (about 2% of its time on labels of (32, 64, 64)). Read only: ``index_add_`` reads it."""
    return _ONE.expand(n)


_ONE = torch.ones((), dtype=torch.long)  # what each index adds

"""The book's arithmetic: how many mini-batches, updates and samples a run has.

Two words, two counts:

- a **mini-batch** is one forward and backward pass over ``batch_size`` samples;
- an **update** is one ``optimizer.step()``; the book also calls it an *iteration* or a *step*.

Without gradient accumulation every mini-batch ends in an update, so the two counts agree;
with ``accumulate`` mini-batches per update they do not. Each function's name says which it
counts. Tests check each against a real ``DataLoader``, ``DistributedSampler`` and ``Trainer``.
All counts are per process unless the name says global.
"""

from __future__ import annotations

import math

from labpkg.core.checks import as_int

__all__ = [
    "samples_per_rank",
    "batches_per_epoch",
    "updates_per_epoch",
    "updates_from_batches",
    "total_updates",
    "effective_batch_size",
    "ends_update",
    "group_size",
]


def samples_per_rank(n: int, world_size: int = 1, drop_last: bool = False) -> int:
    """Samples each of W processes reads per epoch (DistributedSampler's rule).

    Without ``drop_last`` the sampler pads by repeating samples up to ceil(n / W) each; with
    it, it drops the tail so every process gets floor(n / W).

    Example:
        >>> samples_per_rank(10, world_size=4), samples_per_rank(10, 4, drop_last=True)
        (3, 2)
    """
    as_int(n, "n", 0)
    as_int(world_size, "world_size", 1)
    if world_size == 1:
        return n
    return n // world_size if drop_last else math.ceil(n / world_size)


def batches_per_epoch(n: int, batch_size: int, drop_last: bool = False, world_size: int = 1) -> int:
    """Mini-batches per epoch (per process): ceil(n / batch_size), or floor with ``drop_last``.

    Args:
        n: training samples.
        batch_size: samples per mini-batch (per process).
        drop_last: drop the last, smaller mini-batch (and, with W > 1, the uneven tail).
        world_size: processes W (default 1).

    Returns:
        ``len(loader)`` of a DataLoader over those samples.

    Example:
        >>> batches_per_epoch(1000, 100)
        10
        >>> batches_per_epoch(1001, 100), batches_per_epoch(1001, 100, drop_last=True)
        (11, 10)
    """
    as_int(batch_size, "batch_size", 1)
    per_rank = samples_per_rank(n, world_size, drop_last)
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)


def updates_per_epoch(
    n: int,
    batch_size: int,
    accumulate: int = 1,
    drop_last: bool = False,
    world_size: int = 1,
) -> int:
    """Optimizer updates (iterations) per epoch: ceil(mini-batches / accumulate).

    With gradient accumulation, ``accumulate`` mini-batches make one update; a remainder at the
    end of an epoch makes one more, smaller update.

    Example:
        >>> updates_per_epoch(40, 4, accumulate=3)  # 10 mini-batches: groups of 3, 3, 3, 1
        4
    """
    return updates_from_batches(batches_per_epoch(n, batch_size, drop_last, world_size), accumulate)


def updates_from_batches(batches: int, accumulate: int = 1) -> int:
    """Optimizer updates in ``batches`` mini-batches: ceil(batches / accumulate).

    Example:
        >>> updates_from_batches(10, accumulate=3)  # groups of 3, 3, 3, 1
        4
    """
    as_int(accumulate, "accumulate", 1)
    return math.ceil(batches / accumulate)


def total_updates(
    n: int,
    batch_size: int,
    epochs: int,
    accumulate: int = 1,
    drop_last: bool = False,
    world_size: int = 1,
) -> int:
    """Optimizer updates (iterations) in a whole run: updates per epoch × epochs.

    This is ``trainer.state.global_step`` at the end of the run.

    Example:
        >>> total_updates(1000, 100, epochs=5)
        50
        >>> total_updates(40, 4, epochs=2, accumulate=3)
        8
    """
    as_int(epochs, "epochs", 0)
    return updates_per_epoch(n, batch_size, accumulate, drop_last, world_size) * epochs


def effective_batch_size(batch_size: int, accumulate: int = 1, world_size: int = 1) -> int:
    """Samples behind one update: batch × accumulate × W (the global batch when W > 1).

    Example:
        >>> effective_batch_size(32, accumulate=4, world_size=2)
        256
    """
    as_int(batch_size, "batch_size", 1)
    as_int(accumulate, "accumulate", 1)
    as_int(world_size, "world_size", 1)
    return batch_size * accumulate * world_size


def ends_update(batch: int, accumulate: int, batches: int) -> bool:
    """True if mini-batch ``batch`` (0-based) ends an accumulation group, i.e. an update
    follows it: every ``accumulate``-th mini-batch, and the epoch's last.

    Example:
        >>> [ends_update(b, accumulate=3, batches=7) for b in range(7)]
        [False, False, True, False, False, True, True]
    """
    return (batch + 1) % accumulate == 0 or batch + 1 == batches


def group_size(batch: int, accumulate: int, batches: int) -> int:
    """Mini-batches in ``batch``'s accumulation group (the epoch's last may be smaller): each
    adds loss / group_size, so the update follows the group's mean gradient.

    Example:
        >>> [group_size(b, accumulate=3, batches=7) for b in range(7)]
        [3, 3, 3, 3, 3, 3, 1]
    """
    start = batch - batch % accumulate
    return min(accumulate, batches - start)

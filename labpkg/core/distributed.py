"""Data parallelism helpers: the same code runs in one process or under ``torchrun``.

When a ``torch.distributed`` process group is initialised (``torchrun --nproc_per_node=W``), each
of the W processes trains on its own 1/W share of every epoch, and DDP averages the gradients, so
one update sees ``batch_size × W`` samples: the *global batch*.
"""

from __future__ import annotations

import atexit
import contextlib
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

__all__ = [
    "init_from_env",
    "local_device",
    "is_distributed",
    "rank",
    "world_size",
    "all_reduce_sum",
    "distributed_loader",
    "eval_loader",
    "ShardSampler",
    "wrap_model",
    "sync_gradients",
    "set_epoch",
]


def init_from_env(
    verbose: bool = True, device: str | torch.device | None = None
) -> torch.device | None:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    ``torchrun --nproc_per_node=W script.py`` starts W copies of the script with ``RANK``,
    ``LOCAL_RANK`` and ``WORLD_SIZE`` set. ``Trainer`` calls this when it is built, so a
    reader's own script needs no extra line: the group is initialised (``nccl`` with GPU
    ``cuda:LOCAL_RANK`` on CUDA machines, ``gloo`` on CPUs), rank 0 says so once, and the
    group is destroyed when the process exits.

    Args:
        verbose: print one line on rank 0 when the group is joined (default True).
        device: the device the Trainer was asked for: ``"cpu"`` joins with ``gloo`` on the
            CPU even where GPUs exist (e.g. two processes on a one-GPU Colab); None takes one
            GPU per process if there are GPUs.

    Returns:
        The device this process should use, or None when not launched by torchrun (or when a
        group already exists: whoever made it chose the devices).

    Raises:
        RuntimeError: before joining, when GPUs are to be used but this machine has fewer
            than the processes torchrun started on it (one GPU each is needed).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = None if device is None else torch.device(device).type
    if torch.cuda.is_available() and wanted in (None, "cuda"):
        _check_one_gpu_each(local_rank)
        torch.cuda.set_device(local_rank)  # one GPU per process, not W processes on GPU 0
        backend, chosen = "nccl", torch.device("cuda", local_rank)
    else:
        backend, chosen = "gloo", torch.device("cpu")
    dist.init_process_group(backend)
    atexit.register(_destroy_group)
    if verbose and rank() == 0:
        print(
            f"labpkg: started by torchrun: joined a process group of {world_size()} processes "
            f"({backend}); each trains on its own 1/{world_size()} share of every epoch",
            flush=True,
        )
    return chosen


def _check_one_gpu_each(local_rank: int) -> None:
    gpus = torch.cuda.device_count()
    if local_rank < gpus:
        return
    here = os.environ.get("LOCAL_WORLD_SIZE", str(local_rank + 1))
    raise RuntimeError(
        f"torchrun started {here} processes on this machine, but it has {gpus} GPU(s): each "
        f"process needs its own GPU. Start at most {gpus} (--nproc_per_node={gpus}), or train "
        "on the CPU with gloo: Trainer(..., device='cpu')"
    )


def _destroy_group() -> None:
    if is_distributed():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """Under data parallelism a bare ``cuda`` means this process's own GPU (``LOCAL_RANK``).

    Example:
        >>> local_device(torch.device("cpu"))
        device(type='cpu')
    """
    if device.type != "cuda" or device.index is not None or not is_distributed():
        return device
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))


def is_distributed() -> bool:
    """True when a process group is initialised (e.g. under ``torchrun``)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's index, 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes W, 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(tensor: torch.Tensor) -> None:
    """Sum ``tensor`` in place over all processes (no-op in a single process)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def distributed_loader(loader: DataLoader) -> DataLoader:
    """Rebuild a training ``loader`` so each process reads its own share of every epoch.

    A ``DistributedSampler`` gives every process ceil(n / W) samples (padding by repeating a
    few, so all processes make the same number of updates). Shuffling, batch size,
    ``drop_last``, workers, ``generator``, ``worker_init_fn`` and the other options are kept;
    a loader that already uses a ``DistributedSampler`` is returned unchanged.

    Raises:
        ValueError: for a sampler or batch sampler that cannot be split between processes
            (e.g. ``WeightedRandomSampler``) or an ``IterableDataset``: pass a loader built on
            a ``DistributedSampler`` instead. Also when each process's share makes no
            mini-batch (every process raises it, as one process would for an empty loader).
    """
    if not is_distributed():
        return loader
    if not _already_sharded(loader):
        _check_shardable(loader, "train")
        seed = loader.generator.initial_seed() if loader.generator is not None else 0
        shuffle = isinstance(loader.sampler, RandomSampler)
        sampler = DistributedSampler(
            loader.dataset, world_size(), rank(), shuffle=shuffle, seed=seed,
            drop_last=loader.drop_last,
        )  # fmt: skip
        loader = _rebuild(loader, sampler)
    _check_share(loader)
    return loader


def _check_share(loader: DataLoader) -> None:
    """Raise if a process's share of the training data makes no mini-batch. The lengths are
    the same on every process, so every process raises, and none waits for the others."""
    if len(loader) > 0:
        return
    n, w, share = len(loader.dataset), world_size(), len(loader.sampler)
    raise ValueError(
        f"train yields no mini-batch on each of the {w} processes: {n} samples split "
        f"{w} ways leave {share} per process, fewer than batch_size={loader.batch_size} with "
        "drop_last=True. Use more samples, fewer processes, a smaller batch_size or "
        "drop_last=False"
    )


def eval_loader(loader: DataLoader, name: str = "validation_data") -> DataLoader:
    """An evaluation ``loader`` split between processes with every sample exactly once.

    ``DistributedSampler`` would pad an uneven dataset by repeating samples, and the summed
    metrics would count those twice; ``ShardSampler`` gives process r the samples r, r + W,
    r + 2W, ... (shares differ by at most one sample, which evaluation does not mind).
    """
    if not is_distributed() or _already_sharded(loader):
        return loader
    _check_shardable(loader, name)
    return _rebuild(loader, ShardSampler(len(loader.dataset), rank(), world_size()))


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + W, rank + 2W, ...`` of ``n``: a split without padding.

    Example:
        >>> list(ShardSampler(7, rank=1, world_size=3))
        [1, 4]
    """

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, n, world_size)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _already_sharded(loader: DataLoader) -> bool:
    samplers = (loader.sampler, getattr(loader.batch_sampler, "sampler", None))
    return any(isinstance(s, (DistributedSampler, ShardSampler)) for s in samplers)


def _check_shardable(loader: DataLoader, name: str) -> None:
    if isinstance(loader.dataset, IterableDataset):
        raise ValueError(
            f"{name}: an IterableDataset cannot be split between processes by labpkg; make "
            "each process's dataset yield its own share (torch.distributed.get_rank())"
        )
    custom_batches = loader.batch_size is None  # a batch_sampler was passed
    if custom_batches or type(loader.sampler) not in (RandomSampler, SequentialSampler):
        what = type(loader.batch_sampler if custom_batches else loader.sampler).__name__
        raise ValueError(
            f"{name} uses a {what}, which labpkg cannot split between processes without "
            "changing what it samples: build the loader on a torch DistributedSampler "
            "(sampler=DistributedSampler(dataset, ...)), which labpkg then keeps as it is"
        )


def _rebuild(loader: DataLoader, sampler: Sampler) -> DataLoader:
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers > 0 else None,
        persistent_workers=loader.persistent_workers,
    )


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` when a process group exists, else itself.

    DDP averages the gradients of all processes during ``backward``, so every process makes
    the same update: the one a single process would make with the global batch.
    """
    if not is_distributed():
        return model
    device_ids = [device.index or 0] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids)


def sync_gradients(model: nn.Module, now: bool) -> contextlib.AbstractContextManager:
    """A context in which DDP all-reduces gradients only if ``now``.

    With gradient accumulation only the last mini-batch of a group needs the all-reduce; the
    others keep their gradients local (``no_sync``), which saves k − 1 of every k transfers.
    """
    if not now and isinstance(model, nn.parallel.DistributedDataParallel):
        return model.no_sync()
    return contextlib.nullcontext()


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler and dataset which epoch starts (``set_epoch``, if they have it).

    ``DistributedSampler`` shuffles with seed + epoch: without this every epoch has one order.
    Datasets that draw new samples per epoch (``SyntheticShapes(fresh_each_epoch=True)``) hear
    it too, also when wrapped in a ``Subset`` (``train_val_split``) or another wrapper.
    """
    parts: list = []
    for part in (loader.sampler, loader.dataset):
        while part is not None and not any(part is seen for seen in parts):
            parts.append(part)
            part = getattr(part, "dataset", None)  # a Subset's dataset, a sampler's dataset
    for part in parts:  # each once, though the sampler and the loader share the dataset
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)

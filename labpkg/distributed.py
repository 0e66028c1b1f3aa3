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
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

__all__ = [
    "init_from_env",
    "local_device",
    "is_distributed",
    "rank",
    "world_size",
    "all_reduce_sum",
    "distributed_loader",
    "wrap_model",
    "sync_gradients",
    "set_epoch",
]


def init_from_env(verbose: bool = True) -> torch.device | None:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    ``torchrun --nproc_per_node=W script.py`` starts W copies of the script with ``RANK``,
    ``LOCAL_RANK`` and ``WORLD_SIZE`` set. ``Trainer`` calls this when it is built, so a
    reader's own script needs no extra line: the group is initialised (``nccl`` with GPU
    ``cuda:LOCAL_RANK`` on CUDA machines, ``gloo`` on CPUs), rank 0 says so once, and the
    group is destroyed when the process exits.

    Args:
        verbose: print one line on rank 0 when the group is joined (default True).

    Returns:
        The device this process should use, or None when not launched by torchrun (or when a
        group already exists: whoever made it chose the devices).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # one GPU per process, not W processes on GPU 0
        backend, device = "nccl", torch.device("cuda", local_rank)
    else:
        backend, device = "gloo", torch.device("cpu")
    dist.init_process_group(backend)
    atexit.register(_destroy_group)
    if verbose and rank() == 0:
        print(
            f"labpkg: started by torchrun: joined a process group of {world_size()} processes "
            f"({backend}); each trains on its own 1/{world_size()} share of every epoch",
            flush=True,
        )
    return device


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


def distributed_loader(loader: DataLoader, seed: int = 0) -> DataLoader:
    """Rebuild ``loader`` so that each process reads its own share through a DistributedSampler.

    Shuffling, batch size, ``drop_last`` and the other options are kept. A loader that already
    uses a ``DistributedSampler`` is returned unchanged.

    Args:
        loader: a DataLoader built for one process.
        seed: the sampler's shuffling seed; every process must use the same one.

    Returns:
        A DataLoader whose sampler is a ``DistributedSampler`` (call ``set_epoch`` each epoch).
    """
    if isinstance(loader.sampler, DistributedSampler) or not is_distributed():
        return loader
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=world_size(),
        rank=rank(),
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed,
        drop_last=loader.drop_last,
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
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

"""Measurements the chapters make: step time, throughput, memory and gradient noise.

And whether loading the data or training on it takes the time.

Step times under several settings (float32, autocast, channels_last), in a table that
refuses a disturbed measurement, are in ``labpkg.timing``."""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from labpkg.core.devices import time_call

__all__ = [
    "StepProfile",
    "profile_step",
    "saved_activation_bytes",
    "gradient_noise",
    "LoadingProfile",
    "loading_vs_step",
]


@dataclass(frozen=True)
class StepProfile:
    """One training step at one batch size."""

    batch_size: int
    ms_per_step: float
    images_per_s: float
    activation_mb: float  # memory autograd keeps for the backward pass, weights excluded
    peak_mb: float | None  # CUDA allocator peak (None on other devices)


def saved_activation_bytes(model: nn.Module, inputs: torch.Tensor) -> int:
    """Bytes of memory autograd keeps alive from ``model(inputs)`` for the backward pass.

    Every tensor an operation saves for the backward pass is counted by the memory
    (storage) it lives in, and each storage once: a ReLU output that the next convolution
    saves again, or a view of a saved tensor, adds nothing. The model's parameters are
    left out, also when an operation saves them (a convolution saves its weight): they are
    in memory with or without a backward pass. What is left grows with the batch size.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
        >>> x = torch.rand(2, 3, 16, 16)  # kept: x, and the ReLU output (saved by two ops)
        >>> saved_activation_bytes(net, x) == (3 + 8) * 2 * 16 * 16 * 4  # float32: 4 bytes
        True
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}  # storage address -> bytes, so a shared storage counts once

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        # every storage saved here stays alive until the forward pass ends, so no address
        # is reused by another storage in between
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(inputs)
    return sum(kept.values())


def profile_step(
    model: nn.Module,
    loss_fn: Callable,
    batch_size: int,
    image_size: int = 64,
    num_classes: int = 4,
    device: torch.device | None = None,
    repeats: int = 3,
) -> StepProfile:
    """Time one forward + backward + SGD step on random data of ``batch_size`` images."""
    device = device or next(model.parameters()).device
    x = torch.rand(batch_size, 3, image_size, image_size, device=device)
    y = torch.randint(0, num_classes, (batch_size, image_size, image_size), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ms = time_call(step, device, repeats=repeats)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    activation = saved_activation_bytes(model, x) / 2**20
    return StepProfile(batch_size, ms, batch_size / ms * 1000, activation, peak)


def gradient_noise(
    model: nn.Module,
    loss_fn: Callable,
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_sizes: list[int],
    draws: int = 20,
    seed: int = 0,
) -> dict[int, float]:
    """Variance of the mini-batch gradient around the full-data gradient, per batch size.

    For each batch size b, ``draws`` random mini-batches give gradients g_b; the result is the
    mean of ||g_b − g||² where g is the gradient on all ``images``. Theory says about 1/b.
    The model is in eval mode so BatchNorm does not add its own batch-size effect.
    """
    model.eval()
    full = _gradient(model, loss_fn, images, masks)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for b in batch_sizes:
        total = 0.0
        for _ in range(draws):
            idx = torch.randperm(len(images), generator=gen)[:b]
            total += float((_gradient(model, loss_fn, images[idx], masks[idx]) - full).pow(2).sum())
        out[b] = total / draws
    return out


def _gradient(model, loss_fn, x, y) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


@dataclass(frozen=True)
class LoadingProfile:
    """Milliseconds per mini-batch: reading it from the loader, and training on it."""

    load_ms: float
    step_ms: float

    @property
    def loading_share(self) -> float:
        """Share of a training step's time that loading would take (without overlap)."""
        return self.load_ms / (self.load_ms + self.step_ms)


def loading_vs_step(
    model: nn.Module, loss_fn: Callable, loader: DataLoader, batches: int = 10
) -> LoadingProfile:
    """Time ``batches`` mini-batches of ``loader`` alone, then as many training steps on one.

    If loading takes a large share, more ``num_workers`` (or cheaper per-sample work) will
    speed training up; if it is small, the model is the bottleneck. Runs on the model's
    device; the optimizer is a throwaway SGD, so ``model``'s weights change.

    Example:
        >>> from labpkg.data.synthetic import SyntheticShapes
        >>> from labpkg.nn.models import UNet, UNetConfig
        >>> loader = DataLoader(SyntheticShapes(8, seed=0), batch_size=4)
        >>> p = loading_vs_step(UNet(UNetConfig(base_width=4, depth=2)), nn.CrossEntropyLoss(),
        ...                     loader, batches=2)
        >>> 0 < p.loading_share < 1
        True
    """
    device = next(model.parameters()).device
    start = time.perf_counter()
    last = collections.deque(itertools.islice(_endless(loader), batches), maxlen=1)
    load_ms = (time.perf_counter() - start) * 1000 / batches  # reading only: batches dropped
    inputs, target = last[0][0].to(device), last[0][1].to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(model(inputs), target).backward()
        optimizer.step()

    step_ms = time_call(step, device, repeats=batches)
    return LoadingProfile(load_ms, step_ms)


def _endless(loader: DataLoader) -> Iterator:
    """The loader's batches, epoch after epoch (a new pass each time, so each is loaded)."""
    while True:
        yield from loader

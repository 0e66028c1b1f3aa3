"""Where the work runs: device choice, mixed-precision dtype, and a tiny timing helper.

The same notebook runs on a laptop CPU and on a Colab GPU unchanged because every chapter asks
this module for the device instead of writing ``"cuda"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

__all__ = ["pick_device", "describe_device", "amp_dtype_for", "time_call"]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to train on: the one asked for, else cuda, then mps, then cpu.

    Args:
        device: ``None`` (choose automatically), or a name such as ``"cpu"`` or ``"cuda:0"``.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: if the requested device does not exist on this machine.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if device is not None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r}, but CUDA is not available; use device=None")
        if dev.type == "mps" and not _mps_available():
            raise ValueError(f"device={str(device)!r}, but MPS is not available; use device=None")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device) -> str:
    """One line a reader can check against what they expected (GPU name, CPU threads).

    Example:
        >>> describe_device(torch.device("cpu")).startswith("cpu")
        True
    """
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        gib = props.total_memory / 2**30
        return f"cuda:{index} ({props.name}, {gib:.1f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def amp_dtype_for(device: torch.device) -> torch.dtype:
    """The autocast dtype to use on ``device``: bfloat16 where supported, else float16.

    float16 needs a ``GradScaler`` (its range ends at 65504); bfloat16 does not.

    Example:
        >>> amp_dtype_for(torch.device("cpu"))
        torch.bfloat16
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16


def time_call(fn: Callable[[], object], device: torch.device, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call.

    GPU work is asynchronous, so the device is synchronised before each clock read;
    without that the timer would measure only the kernel launches.

    Args:
        fn: the work to time, called with no arguments.
        device: where ``fn`` runs (used to synchronise).
        repeats: timed calls (default 5); the median resists one-off hiccups.

    Returns:
        Median milliseconds per call.

    Example:
        >>> time_call(lambda: sum(range(10)), torch.device("cpu"), repeats=3) >= 0
        True
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    fn()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return times[len(times) // 2]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()

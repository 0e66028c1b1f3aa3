"""Where the work runs: device choice, mixed-precision dtype, and a tiny timing helper.

The same notebook runs on a laptop CPU and on a Colab GPU unchanged because every chapter asks
this module for the device instead of writing ``"cuda"``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import torch

from labpkg.core.checks import as_int

__all__ = [
    "pick_device",
    "describe_device",
    "precision_note",
    "amp_settings",
    "amp_dtype_for",
    "amp_is_fast",
    "resolve_amp",
    "cpu_bf16_is_native",
    "cuda_bf16_is_native",
    "time_call",
]


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
    """One line a reader can check: the device, and the mixed precision ``amp="auto"`` picks.

    Example:
        >>> describe_device(torch.device("cpu")).startswith("cpu")
        True
    """
    amp = precision_note(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        gib = props.total_memory / 2**30
        return (
            f"cuda:{index} ({props.name}, {gib:.1f} GiB, compute capability "
            f"{props.major}.{props.minor}; amp: {amp})"
        )
    if device.type == "mps":
        return f"mps (Apple GPU; amp: {amp})"
    return f"cpu ({torch.get_num_threads()} threads; amp: {amp})"


def precision_note(device: torch.device) -> str:
    """What ``amp="auto"`` does on ``device``, and why, in a few words.

    ``"bfloat16"``, ``"float16 + GradScaler"``, or ``"off (float32): ..."`` with the reason.

    Example:
        >>> precision_note(torch.device("cpu")) in (
        ...     "bfloat16", "off (float32): this CPU has no native bfloat16")
        True
    """
    if not amp_is_fast(device):
        return "off (float32): this CPU has no native bfloat16"
    dtype, scaler = amp_settings(device)
    name = str(dtype).removeprefix("torch.")
    return f"{name} + GradScaler" if scaler else name


def cpu_bf16_is_native() -> bool:
    """True if this CPU computes bfloat16 in hardware *and* PyTorch's kernels use it.

    Only then does bfloat16 autocast pay on a CPU. Chapter 15 measured the default U-Net's
    training step with 2 threads: 1.44 to 2.4× as fast as float32 on a CPU with AMX, and 0.13
    to 0.20× (5 to 8× *slower*) on the same CPU limited to AVX2, which emulates bfloat16, as
    most laptops do. It needs the instructions (``torch.cpu.get_capabilities()``: ``avx512_bf16``
    or ``amx_bf16`` on x86, ``bf16`` or ``sve_bf16`` on Arm), on x86 ATen's kernels built for
    them (``torch.backends.cpu.get_cpu_capability()`` is ``"AVX512"``: an environment limit
    such as ``ATEN_CPU_CAPABILITY=avx2`` lowers it), and oneDNN allowed to use them
    (``ONEDNN_MAX_CPU_ISA`` can forbid it).

    Example:
        >>> isinstance(cpu_bf16_is_native(), bool)
        True
    """
    caps = _cpu_capabilities()
    if caps.get("architecture", "").startswith(("arm", "aarch64")) or "neon" in caps:
        return bool(caps.get("bf16") or caps.get("sve_bf16"))
    has = caps.get("avx512_bf16") or caps.get("amx_bf16")
    kernels = torch.backends.cpu.get_cpu_capability() == "AVX512"
    onednn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)()
    return bool(has and kernels and onednn)


def _cpu_capabilities() -> dict:
    """``torch.cpu.get_capabilities()``, or on releases before it (Colab keeps its own torch)
    the x86 checks PyTorch had then; an unknown CPU counts as without native bfloat16."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        return get()
    caps: dict = {"architecture": platform.machine().lower()}
    for name, probe in (
        ("avx512_bf16", "_is_avx512_bf16_supported"),
        ("amx_bf16", "_is_amx_tile_supported"),
    ):
        check = getattr(torch.cpu, probe, None)
        caps[name] = bool(check()) if check is not None else False
    return caps


def amp_is_fast(device: torch.device) -> bool:
    """Whether ``amp="auto"`` turns mixed precision on for ``device``: on every GPU, and on a
    CPU only where bfloat16 is native (``cpu_bf16_is_native``).

    A GPU is not examined further. Autocast then uses ``amp_dtype_for(device)``, which NVIDIA
    GPUs compute in hardware (float16 from compute capability 5.3, on tensor cores from 7.0;
    bfloat16 from 8.0) and Apple GPUs too (float16); older NVIDIA GPUs are not singled out.

    Example:
        >>> amp_is_fast(torch.device("cpu")) == cpu_bf16_is_native()
        True
    """
    return device.type != "cpu" or cpu_bf16_is_native()


def resolve_amp(amp: bool | str, device: torch.device) -> bool:
    """The ``amp`` argument as the Trainer uses it: True, False, or ``"auto"`` resolved for
    ``device`` by ``amp_is_fast``.

    Example:
        >>> resolve_amp(True, torch.device("cpu")), resolve_amp("auto", torch.device("cuda"))
        (True, True)
    """
    if amp == "auto":
        return amp_is_fast(device)
    if not isinstance(amp, bool):
        raise ValueError(f"amp must be True, False or 'auto', got {amp!r}")
    return amp


def cuda_bf16_is_native(device: torch.device) -> bool:
    """True if the GPU computes bfloat16 in hardware (compute capability 8.0+, e.g. A100, L4).

    ``torch.cuda.is_bf16_supported()`` also answers True on older GPUs such as Colab's free
    T4 (compute capability 7.5), because by default it counts *emulated* bfloat16, which is
    slow there; and it asks the current device, not ``device``. This asks ``device`` itself,
    which is what ``is_bf16_supported(including_emulation=False)`` checks. ROCm GPUs count as
    native (PyTorch treats every ROCm device as bfloat16-capable).
    """
    if torch.version.hip:
        return True
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def amp_settings(
    device: torch.device, amp_dtype: torch.dtype | None = None
) -> tuple[torch.dtype, bool]:
    """The autocast dtype for ``device`` and whether it needs a ``GradScaler``.

    bfloat16 on CPUs (emulated on those without it: ``amp="auto"`` leaves them in float32) and
    on CUDA GPUs of compute capability 8.0+, else float16 (T4 and other older GPUs, Apple
    GPUs). float16's range is narrow (largest 65504, smallest normal about 6e-5), so small
    gradients underflow to 0 unless a ``GradScaler`` scales the loss up first; bfloat16 has
    float32's range and needs no scaler.

    Args:
        device: where training runs.
        amp_dtype: force a dtype (``torch.bfloat16`` or ``torch.float16``); None chooses.

    Returns:
        ``(dtype, needs_scaler)``.

    Example:
        >>> amp_settings(torch.device("cpu"))
        (torch.bfloat16, False)
        >>> amp_settings(torch.device("cpu"), torch.float16)
        (torch.float16, True)
    """
    if amp_dtype is None:
        amp_dtype = amp_dtype_for(device)
    if amp_dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"amp_dtype must be torch.bfloat16 or torch.float16, got {amp_dtype}")
    return amp_dtype, amp_dtype == torch.float16


def amp_dtype_for(device: torch.device) -> torch.dtype:
    """The autocast dtype to use on ``device``: bfloat16 on CPUs and on GPUs that compute it
    natively (CUDA compute capability 8.0+, ROCm), else float16.

    Example:
        >>> amp_dtype_for(torch.device("cpu"))
        torch.bfloat16
    """
    if device.type == "cuda":
        return torch.bfloat16 if cuda_bf16_is_native(device) else torch.float16
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
    repeats = as_int(repeats, "repeats", 1)
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

"""Device choice and mixed precision by hardware, with the CUDA queries mocked on this CPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import labpkg
from labpkg.core.devices import amp_settings, describe_device


def _fake_gpu(monkeypatch, major: int, minor: int, name: str) -> None:
    """Pretend one CUDA device of this compute capability is present."""
    props = SimpleNamespace(name=name, major=major, minor=minor, total_memory=15 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.version, "hip", None)


def test_t4_gets_float16_with_a_grad_scaler(monkeypatch):
    # a T4 (sm_75) only emulates bfloat16: torch.cuda.is_bf16_supported() says True by default
    _fake_gpu(monkeypatch, 7, 5, "Tesla T4")
    assert amp_settings(torch.device("cuda")) == (torch.float16, True)
    assert "float16 + GradScaler" in describe_device(torch.device("cuda"))
    assert "Tesla T4" in describe_device(torch.device("cuda"))


def test_ampere_gets_bfloat16_without_a_scaler(monkeypatch):
    _fake_gpu(monkeypatch, 8, 0, "NVIDIA A100")
    assert amp_settings(torch.device("cuda")) == (torch.bfloat16, False)
    assert describe_device(torch.device("cuda")).endswith("amp: bfloat16)")


def test_apple_gpu_gets_float16_and_cpu_bfloat16():
    assert amp_settings(torch.device("mps")) == (torch.float16, True)
    assert amp_settings(torch.device("cpu")) == (torch.bfloat16, False)
    assert labpkg.amp_dtype_for(torch.device("cpu")) is torch.bfloat16


def test_a_forced_dtype_decides_the_scaler_and_others_are_refused():
    assert amp_settings(torch.device("cpu"), torch.float16) == (torch.float16, True)
    with pytest.raises(ValueError, match="amp_dtype"):
        amp_settings(torch.device("cpu"), torch.float32)


@pytest.mark.parametrize("dtype", [None, torch.float16, torch.bfloat16])
def test_trainer_enables_its_scaler_exactly_for_float16(dtype):
    model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = labpkg.Trainer(model, opt, "cross_entropy", device="cpu", amp=True, amp_dtype=dtype)
    assert trainer.scaler.is_enabled() == (trainer.amp_dtype == torch.float16)


def test_describe_device_names_the_cpu_threads_and_precision(monkeypatch):
    import labpkg.core.devices

    threads = torch.get_num_threads()
    monkeypatch.setattr(labpkg.devices, "cpu_bf16_is_native", lambda: True)
    assert describe_device(torch.device("cpu")) == f"cpu ({threads} threads; amp: bfloat16)"
    monkeypatch.setattr(labpkg.devices, "cpu_bf16_is_native", lambda: False)
    assert describe_device(torch.device("cpu")) == (
        f"cpu ({threads} threads; amp: off (float32): this CPU has no native bfloat16)"
    )


def _cpu(monkeypatch, capability: str, onednn: bool = True, **caps) -> None:
    """Pretend a CPU with these instruction flags and this ATen kernel level."""
    caps.setdefault("architecture", "x86_64")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)


@pytest.mark.parametrize(
    ("capability", "onednn", "caps", "native"),
    [
        ("AVX512", True, {"avx512_bf16": True}, True),  # Cooper Lake, Sapphire Rapids, Zen 4
        ("AVX512", True, {"amx_bf16": True}, True),
        ("AVX512", True, {"avx512_f": True}, False),  # Skylake-X: AVX-512 without BF16
        ("AVX2", True, {"avx512_bf16": True}, False),  # ATEN_CPU_CAPABILITY=avx2 on such a CPU
        ("AVX512", False, {"avx512_bf16": True}, False),  # ONEDNN_MAX_CPU_ISA=AVX2
        ("AVX2", True, {"avx2": True}, False),  # most laptops
        ("DEFAULT", True, {"architecture": "aarch64", "neon": True, "bf16": True}, True),
        ("DEFAULT", True, {"architecture": "aarch64", "neon": True}, False),
    ],
)
def test_auto_turns_bfloat16_on_only_where_the_cpu_computes_it_natively(
    monkeypatch, capability, onednn, caps, native
):
    from labpkg.core.devices import amp_is_fast, cpu_bf16_is_native

    _cpu(monkeypatch, capability, onednn, **caps)
    assert cpu_bf16_is_native() is native
    assert amp_is_fast(torch.device("cpu")) is native
    model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = labpkg.Trainer(model, opt, "cross_entropy", device="cpu", amp="auto")
    assert trainer.amp is native
    # any GPU: labpkg does not look at its compute capability (float16 is native from 5.3)
    assert amp_is_fast(torch.device("cuda"))


def test_amp_must_be_true_false_or_auto():
    model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="amp must be True, False or 'auto', got 'yes'"):
        labpkg.Trainer(model, opt, "cross_entropy", device="cpu", amp="yes")


def test_pick_device_prefers_what_is_asked():
    assert labpkg.pick_device("cpu") == torch.device("cpu")


def test_pick_device_default_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert labpkg.pick_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert labpkg.pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert labpkg.pick_device() == torch.device("cpu")


def test_asking_for_missing_cuda_names_the_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda'.*not available"):
        labpkg.pick_device("cuda")


def test_time_call_returns_the_median_of_the_timed_calls(monkeypatch):
    import labpkg.core.devices

    # a fake clock: each timed call takes the next of these durations (seconds)
    durations = iter([0.010, 0.050, 0.020, 0.040, 0.030])
    now = [0.0]

    def clock():
        return now[0]

    def work():
        now[0] += next(durations, 0.0)

    monkeypatch.setattr(labpkg.devices.time, "perf_counter", clock)
    calls = []
    ms = labpkg.time_call(lambda: (calls.append(1), work()), torch.device("cpu"), repeats=4)
    assert len(calls) == 5  # one warm-up (10 ms, not counted) + four timed
    assert ms == pytest.approx(40.0)  # median of 50, 20, 40, 30 ms: the upper middle one
    with pytest.raises(ValueError, match="repeats"):
        labpkg.time_call(lambda: None, torch.device("cpu"), repeats=0)


@pytest.mark.parametrize("avx512_bf16", [True, False])
def test_a_torch_without_get_capabilities_falls_back_to_its_own_cpu_checks(
    monkeypatch, avx512_bf16
):
    # Colab keeps its own torch; releases before torch.cpu.get_capabilities had these checks
    from labpkg.core.devices import cpu_bf16_is_native

    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert cpu_bf16_is_native() is avx512_bf16

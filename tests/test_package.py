"""The package imports cheaply, reports its version, and picks devices with clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import labpkg


def test_version_is_a_release_string():
    major, minor, patch = labpkg.__version__.split(".")
    assert all(part.isdigit() for part in (major, minor, patch))


def test_import_does_not_load_plotting_widgets_or_progress_bars():
    # torch itself may import tqdm; what counts is what labpkg adds on top of `import torch`.
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "import labpkg\n"
        "added = set(sys.modules) - before\n"
        "heavy = [m for m in ('matplotlib', 'ipywidgets', 'tqdm', 'IPython') if m in added]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_exported():
    for name in labpkg.__all__:
        assert hasattr(labpkg, name), name


def test_pick_device_prefers_what_is_asked():
    assert labpkg.pick_device("cpu") == torch.device("cpu")


def test_pick_device_default_falls_back_to_cpu_without_accelerators():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert labpkg.pick_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_asking_for_missing_cuda_names_the_argument():
    with pytest.raises(ValueError, match="device='cuda'.*not available"):
        labpkg.pick_device("cuda")


def test_amp_dtype_on_cpu_is_bfloat16():
    assert labpkg.amp_dtype_for(torch.device("cpu")) is torch.bfloat16


def test_time_call_returns_the_median_and_rejects_zero_repeats():
    calls = []
    assert labpkg.time_call(lambda: calls.append(1), torch.device("cpu"), repeats=3) >= 0
    assert len(calls) == 4  # one warm-up + three timed
    with pytest.raises(ValueError, match="repeats"):
        labpkg.time_call(lambda: None, torch.device("cpu"), repeats=0)

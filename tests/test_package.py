"""The package imports cheaply, reports its version and exports its public names."""

from __future__ import annotations

import subprocess
import sys

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

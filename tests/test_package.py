"""The package imports cheaply, reports its version and exports its public names."""

from __future__ import annotations

from helpers import run_python

import labpkg


def test_version_is_a_release_string():
    major, minor, patch = labpkg.__version__.split(".")
    assert all(part.isdigit() for part in (major, minor, patch))


def test_import_adds_no_plotting_widgets_progress_bars_or_torchvision():
    # A fresh interpreter: in this one other tests have imported all of them already. Torch
    # itself may import tqdm; what counts is what labpkg adds on top of `import torch`.
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "from labpkg import *\n"
        "import labpkg.data.pets\n"
        "added = set(sys.modules) - before\n"
        "heavy = ('matplotlib', 'ipywidgets', 'tqdm', 'IPython', 'torchvision')\n"
        "print(sorted(m for m in heavy if m in added))\n"
        "print(Trainer.__name__, batches_per_epoch(10, 4), Recipe.__name__)\n"
    )
    out = run_python("-c", code, check=True)
    # the star import brings the chapters' names, and nothing heavy comes with them
    assert out.stdout.split("\n")[:2] == ["[]", "Trainer 3 Recipe"]


def test_public_names_are_exported():
    for name in labpkg.__all__:
        assert hasattr(labpkg, name), name


def test_heavy_modules_are_lazy_attributes_outside_all():
    for name in ("viz", "widgets", "exercises", "profiling"):
        assert name not in labpkg.__all__
        assert getattr(labpkg, name).__name__ == labpkg._LAZY_MODULES[name]


def test_every_module_has_a_section_in_the_api_reference():
    import pkgutil
    from pathlib import Path

    api = (Path(__file__).resolve().parents[1] / "book" / "api.md").read_text()
    modules = [m.name for m in pkgutil.walk_packages(labpkg.__path__, "labpkg.")]
    missing = [m for m in modules if m != "labpkg.__main__" and f"automodule:: {m}\n" not in api]
    assert missing == []

"""What `pip install` ships: the wheel and sdist hold every module of labpkg and nothing else.

An editable install once hid a wheel without ``labpkg.callbacks``: every Colab reader's first
cell would have failed. These tests build the distributions the way pip does (PEP 517 hooks of
the declared backend) from a copy of the project, and the test suite itself runs against the
installed package, never against the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from worktree import ROOT, copy_project

import labpkg

# One PEP 517 hook per process, as pip and `build` call them (setuptools keeps state between
# hooks run in one process and then writes the second archive elsewhere).
HOOK = (
    "import sys, setuptools.build_meta as b; print('BUILT', getattr(b, sys.argv[1])(sys.argv[2]))"
)


def _build(hook: str, source: Path, out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-c", HOOK, hook, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    built = [line for line in proc.stdout.splitlines() if line.startswith("BUILT ")]
    return out / built[-1].split()[1]  # setuptools logs to stdout too


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> tuple[Path, Path]:
    source = copy_project(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    return _build("build_wheel", source, out), _build("build_sdist", source, out)


def _package_modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "labpkg").rglob("*.py")}


def test_wheel_holds_every_module_of_labpkg_and_nothing_else(distributions):
    wheel, _ = distributions
    names = zipfile.ZipFile(wheel).namelist()
    assert {n for n in names if n.endswith(".py")} == _package_modules()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"labpkg", f"labpkg-{labpkg.__version__}.dist-info"}


def test_wheel_and_sdist_ship_the_speedrun_records_the_capstone_reads(distributions):
    # labpkg.recipes.speedrun_records() reads them with importlib.resources, also on Colab
    wheel, sdist = distributions
    assert "labpkg/records/speedrun.json" in zipfile.ZipFile(wheel).namelist()
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert f"labpkg-{labpkg.__version__}/labpkg/records/speedrun.json" in names


def test_sdist_holds_every_module_and_no_tests_lessons_or_book(distributions):
    _, sdist = distributions
    prefix = f"labpkg-{labpkg.__version__}/"
    with tarfile.open(sdist) as archive:
        names = [m.name.removeprefix(prefix) for m in archive.getmembers() if m.isfile()]
    assert _package_modules() <= set(names)
    assert {"pyproject.toml", "README.md"} <= set(names)
    leaked = [n for n in names if n.split("/")[0] in {"tests", "lessons", "book", "benchmarks"}]
    assert leaked == []


def test_the_tests_import_the_installed_package_not_the_checkout():
    # `make test` installs labpkg without -e and runs `pytest` (not `python -m pytest`, which
    # would put the checkout on sys.path): what is tested is what a wheel ships.
    installed = Path(labpkg.__file__).resolve().parent
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert installed == site_packages / "labpkg", f"labpkg imported from {installed}"

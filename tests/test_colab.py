"""A Colab rehearsal: each notebook's own first cell installs labpkg, and the notebook runs on it.

This is where the lessons run as tests (nbval), once, against the package as a reader gets it:

- a fresh virtual environment gets ``torch==2.13.0`` and numpy *first*, as Colab has them,
  then only what runs a notebook (ipykernel) and the test harness (pytest, nbval): labpkg's own
  dependencies must come from its metadata (pinned by ``PIP_CONSTRAINT`` for repeatability);
- git rewrites the repository URL of the install cell to a local repository that holds the
  project tagged ``v<version>`` (``url.<local>.insteadOf``), so the cell's exact
  ``git+https://...@v<version>`` installs for real, offline;
- a stand-in ``google.colab`` module is imported when the kernel starts (as Colab's kernel
  does), so the cell's ``if "google.colab" in sys.modules:`` branch runs its ``%pip install``;
- every notebook runs with ``pytest --nbval-lax --nbval-current-env`` in that environment,
  from a folder outside the checkout, so the repository's ``labpkg/`` is not importable;
- afterwards torch is the same version at the same place, and ``pip check`` is clean.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from worktree import ROOT, make_release_repo

import labpkg

NOTEBOOKS = sorted((ROOT / "lessons").glob("*.ipynb"))
TORCH = "torch==2.13.0"
CONSTRAINTS = ROOT / "constraints.txt"
PROBE = "import json, torch; print(json.dumps([torch.__version__, torch.__file__]))"


@dataclass
class ColabLike:
    """A Colab-like environment: its python, the variables its kernels run with, and a log."""

    root: Path
    python: Path
    env: dict[str, str]
    torch_before: list[str]
    notebooks_run: list[str] = field(default_factory=list)

    def run(self, *args: str, cwd: Path | None = None, timeout: int = 900):
        return subprocess.run(
            [str(self.python), *args],
            cwd=cwd or self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS), *args]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=900)


def _fake_colab(root: Path) -> tuple[Path, Path]:
    """A ``google.colab`` package, and an IPython profile whose startup imports it."""
    site = root / "colab-site"
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab."""\n')
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # Colab's kernel imports it\n")
    return site, root / "ipython"


@pytest.fixture(scope="session")
def colab(tmp_path_factory) -> ColabLike:
    root = tmp_path_factory.mktemp("colab")
    release = make_release_repo(root / "release", f"v{labpkg.__version__}")
    gitconfig = root / "gitconfig"
    gitconfig.write_text(f'[url "file://{release}"]\n\tinsteadOf = {_repository_url()}\n')
    subprocess.run(["python3", "-m", "venv", str(root / "venv")], check=True, timeout=300)
    python = root / "venv" / "bin" / "python"
    _pip(python, "--upgrade", "pip>=24")
    _pip(python, TORCH, "numpy")  # Colab's own torch and numpy come first
    _pip(python, "ipykernel", "pytest", "nbval")  # a kernel, and the test harness
    site, ipython_dir = _fake_colab(root)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_CONFIG_NOSYSTEM="1",
        IPYTHONDIR=str(ipython_dir),
        PYTHONPATH=str(site),
        PIP_CONSTRAINT=str(CONSTRAINTS),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, env=env)
    return ColabLike(root, python, env, json.loads(probe.stdout))


def test_the_rehearsal_installs_from_the_notebooks_own_url_and_tag():
    pattern = re.compile(r'%pip install -q "labpkg @ git\+(?P<url>[^@"]+)@v(?P<version>[^"]+)"')
    for path in NOTEBOOKS:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        match = pattern.search(first)
        assert match, f"{path.name}: no install line in the first cell"
        assert (match["url"], match["version"]) == (_repository_url(), labpkg.__version__)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_colab_after_its_own_install_cell(colab, notebook):
    folder = colab.root / "run" / notebook.stem  # outside the checkout
    folder.mkdir(parents=True)
    (folder / "pytest.ini").write_text("[pytest]\n")  # no parent configuration applies
    (folder / notebook.name).write_bytes(notebook.read_bytes())
    proc = colab.run(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
        notebook.name, cwd=folder,
    )  # fmt: skip
    colab.notebooks_run.append(notebook.name)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


@pytest.mark.slow
def test_after_the_installs_torch_is_untouched_and_labpkg_came_from_the_tag(colab):
    if not colab.notebooks_run:
        pytest.skip("no notebook ran in this session")
    after = json.loads(colab.run("-c", PROBE).stdout)
    assert after == colab.torch_before  # same version, same place: Colab keeps its torch
    check = colab.run("-m", "pip", "check")
    assert check.returncode == 0, check.stdout
    show = colab.run(
        "-c",
        "import importlib.metadata as m, json, labpkg; d = m.distribution('labpkg'); "
        "print(json.dumps([labpkg.__file__, json.loads(d.read_text('direct_url.json'))]))",
    )
    location, direct_url = json.loads(show.stdout)
    assert Path(location).is_relative_to(colab.root / "venv")
    assert direct_url["url"] == _repository_url()
    assert direct_url["vcs_info"]["requested_revision"] == f"v{labpkg.__version__}"

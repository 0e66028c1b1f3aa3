"""The Colab rehearsal and the site built from it: every notebook executed once per test run.

1. A Colab-like environment: a fresh virtual environment gets ``torch==2.13.0`` and numpy
   *first*, as Colab has them, then only what runs a notebook (ipykernel, nbclient); labpkg's
   own dependencies must come from its metadata (pinned by ``PIP_CONSTRAINT`` for
   repeatability). Git rewrites the repository URL of the install cell to a local repository
   that holds the project tagged ``v<version>`` (``url.<local>.insteadOf``), so the cell's
   exact ``git+https://...@v<version>`` installs for real, offline. A stand-in
   ``google.colab`` module is imported when each kernel starts (as Colab's kernel does), so
   the cell's ``if "google.colab" in sys.modules:`` branch runs its ``%pip install``.
2. Every notebook is executed in that environment (``run_notebook.py``, one kernel per
   notebook, from a folder outside the checkout, so the repository's ``labpkg/`` is not
   importable); a cell that raises fails it, so its ``assert`` lines are the checks.
3. The executed notebooks, outputs and all, are what the book build renders
   (``execute_notebooks: "off"`` in a copy of the project): the page shows this very run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from worktree import ROOT, copy_project, make_release_repo

TORCH = "torch==2.13.0"
CONSTRAINTS = ROOT / "constraints.txt"
PROBE = "import json, torch; print(json.dumps([torch.__version__, torch.__file__]))"
RUNNER = Path(__file__).with_name("run_notebook.py")
NOTEBOOKS = sorted((ROOT / "lessons").glob("*.ipynb"))
# Three notebooks at a time, one thread each, on two cores: while one kernel starts, imports
# or runs its install cell (waiting on files and processes more than computing), the other
# two keep both cores busy; and no multi-threaded kernels fight over the same cores.
JOBS = int(os.environ.get("LABPKG_NOTEBOOK_JOBS", "3"))
THREADS = "1"
TIMES = ROOT / "_build" / "notebook-seconds.json"  # the last run's, to order the next one


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


@dataclass
class ColabLike:
    """A Colab-like environment: its python, the variables its kernels run with, and a log."""

    root: Path
    python: Path
    env: dict[str, str]
    torch_before: list[str]
    seconds: float = 0.0

    def run(self, *args: str, cwd: Path | None = None, timeout: int = 900):
        return subprocess.run(
            [str(self.python), *args],
            cwd=cwd or self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _pip(python: Path, *args: str) -> None:
    # --no-compile: no .pyc for all of torch up front (two thirds of the install's time);
    # Python compiles what a kernel imports, when it imports it
    command = [str(python), "-m", "pip", "install", "--quiet", "--no-compile"]
    command += ["-c", str(CONSTRAINTS), *args]
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


def make_colab(root: Path, version: str) -> ColabLike:
    """Create the environment under ``root`` (nothing of labpkg installed yet)."""
    start = time.perf_counter()
    release = make_release_repo(root / "release", f"v{version}")
    gitconfig = root / "gitconfig"
    gitconfig.write_text(f'[url "file://{release}"]\n\tinsteadOf = {repository_url()}\n')
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    python = root / "venv" / "bin" / "python"
    _pip(python, "--upgrade", "pip>=24")
    _pip(python, TORCH, "numpy")  # Colab's own torch and numpy come first
    _pip(python, "ipykernel", "nbclient")  # a kernel, and what executes a notebook
    site, ipython_dir = _fake_colab(root)
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_CONFIG_NOSYSTEM="1",
        IPYTHONDIR=str(ipython_dir),
        PYTHONPATH=str(site),
        PIP_CONSTRAINT=str(CONSTRAINTS),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_COMPILE="1",  # also for the notebooks' own %pip install
        OMP_NUM_THREADS=THREADS,
    )
    probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    return ColabLike(root, python, env, json.loads(probe.stdout), seconds)


@dataclass
class Run:
    """One notebook's execution: did every cell run, how long, and what went wrong."""

    ok: bool
    seconds: float
    executed: Path
    log: str = ""


@dataclass
class Rehearsal:
    colab: ColabLike
    executed: Path  # folder of executed notebooks, named as in lessons/
    runs: dict[str, Run] = field(default_factory=dict)
    seconds: float = 0.0


def _execute(colab: ColabLike, notebook: Path, out: Path) -> Run:
    folder = colab.root / "run" / notebook.stem  # outside the checkout: its own cwd
    folder.mkdir(parents=True)
    target = out / notebook.name
    proc = colab.run(str(RUNNER), str(notebook), str(folder / notebook.name), cwd=folder)
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if (folder / notebook.name).exists():
        shutil.copy2(folder / notebook.name, target)
    ok = proc.returncode == 0 and result.get("ok", False)
    return Run(ok, result.get("seconds", float("nan")), target, proc.stderr[-8000:])


def measures_time(notebook: Path) -> bool:
    """Does a code cell time steps with ``labpkg.timing``? Such a notebook refuses a table
    that a busy machine disturbed (``UnsteadyTiming``), so it runs with the machine quiet."""
    cells = json.loads(notebook.read_text())["cells"]
    return any("labpkg.timing." in "".join(c["source"]) for c in cells if c["cell_type"] == "code")


def rehearse(colab: ColabLike, notebooks: list[Path], out: Path, jobs: int = JOBS) -> Rehearsal:
    """Execute ``notebooks`` in ``colab``; executed copies go to ``out``.

    The first notebook runs alone: its install cell is the one that installs labpkg (later
    cells find it installed, and two pip processes must not write one environment at once).
    The others then run ``jobs`` at a time, the slowest of the last run first when its times
    are known (``TIMES``), so that the run does not end waiting for one long notebook.
    Notebooks that time steps (``measures_time``) run last, one at a time: by then the other
    kernels have ended, and so have the unit tests of the other pytest worker.
    """
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    first, *rest = notebooks
    runs = {first.name: _execute(colab, first, out)}
    known = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    quiet = [p for p in rest if measures_time(p)]
    rest = sorted(set(rest) - set(quiet), key=lambda p: -known.get(p.name, p.stat().st_size / 1000))
    with ThreadPoolExecutor(jobs) as pool:
        done = pool.map(lambda p: _execute(colab, p, out), rest)
        runs.update(zip([p.name for p in rest], done, strict=True))
    runs.update({p.name: _execute(colab, p, out) for p in quiet})
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    TIMES.write_text(json.dumps({name: run.seconds for name, run in runs.items()}, indent=1))
    return Rehearsal(colab, out, runs, time.perf_counter() - start)


@dataclass
class BuiltSite:
    html: Path
    log: str
    returncode: int
    seconds: float


def build_site(executed: Path, dest: Path) -> BuiltSite:
    """Build the book from a copy of the project whose lessons are the executed notebooks.

    Nothing is executed again (``execute_notebooks: "off"``): the build renders the outputs of
    the rehearsal. The copy starts with no ``_build``, so no warning hides behind an
    incremental build; warnings are errors.
    """
    start = time.perf_counter()
    project = copy_project(dest)
    for notebook in executed.glob("*.ipynb"):
        shutil.copy2(notebook, project / "lessons" / notebook.name)
    config_path = project / "_config.yml"
    config = yaml.safe_load(config_path.read_text())
    config["execute"]["execute_notebooks"] = "off"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jupyter_book), "build", str(project), "-W", "-n", "--keep-going"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log, seconds = proc.stdout + proc.stderr, time.perf_counter() - start
    return BuiltSite(project / "_build" / "html", log, proc.returncode, seconds)

"""The Colab rehearsal: each notebook's own first cell installs labpkg, and the notebook runs on it.

This is where the lessons run as tests, once per session, against the package as a reader gets
it (``tests/rehearsal.py`` says how the environment is made). A cell that raises fails its
notebook, so the ``assert`` lines of the cells are the checks; the book is then built from
these very executions (``conftest.built_site``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rehearsal import NOTEBOOKS, measures_time, repository_url

import labpkg

pytestmark = pytest.mark.xdist_group("site")  # one worker runs the rehearsal, build, browser


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_on_colab_after_its_own_install_cell(rehearsal, notebook):
    run = rehearsal.runs[notebook.name]
    assert run.ok, f"{notebook.name} failed after {run.seconds:.0f} s:\n{run.log}"
    first = json.loads(run.executed.read_text())["cells"][0]
    printed = "".join("".join(o.get("text", "")) for o in first.get("outputs", []))
    # IPython's %pip prints this after running pip: the cell's Colab branch ran
    assert "you may need to restart the kernel" in printed, printed


@pytest.mark.slow
def test_after_the_installs_torch_is_untouched_and_labpkg_came_from_the_tag(rehearsal):
    colab = rehearsal.colab
    check = colab.run("-m", "pip", "check")
    assert check.returncode == 0, check.stdout
    show = colab.run(
        "-c",
        "import importlib.metadata as m, json, labpkg, torch; d = m.distribution('labpkg'); "
        "print(json.dumps([torch.__version__, torch.__file__, labpkg.__file__, "
        "json.loads(d.read_text('direct_url.json'))]))",
    )
    *torch_after, location, direct_url = json.loads(show.stdout)
    assert torch_after == colab.torch_before  # same version, same place: Colab keeps its torch
    assert Path(location).is_relative_to(colab.root / "venv")
    assert direct_url["url"] == repository_url()
    assert direct_url["vcs_info"]["requested_revision"] == f"v{labpkg.__version__}"


def test_only_the_notebooks_that_time_steps_wait_for_a_quiet_machine():
    timed = [p.name for p in NOTEBOOKS if measures_time(p)]
    assert timed == ["15_gpu.ipynb"]  # its table refuses a disturbed measurement

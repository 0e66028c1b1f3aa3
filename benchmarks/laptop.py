"""Every chapter on this machine and on a simulated laptop CPU, side by side.

This machine's CPU has AVX-512 BF16 and AMX; most readers' laptops have neither. Limiting
PyTorch's kernels and oneDNN to AVX2 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``)
runs what such a laptop runs. Each notebook is executed in a fresh kernel of this Python, once
as is and once under the limit (interleaved, so drift in the machine's speed hits both alike),
with the threads the machine has (2 here), and the table gives both times and their ratio.
The book promises every chapter in under a minute on two cores; the last column flags any
that miss it on the laptop.

    .venv/bin/python benchmarks/laptop.py                  # every chapter
    .venv/bin/python benchmarks/laptop.py 06_data 17_capstone --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAPTOP = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
BUDGET_S = 60.0
RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
"""


def run(notebook: Path, extra_env: dict[str, str]) -> float:
    """Seconds to execute ``notebook`` in a fresh kernel with ``extra_env`` (from outside the
    checkout, so the kernel imports the installed labpkg)."""
    env = {**os.environ, **extra_env}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(notebook)],
            cwd=folder,
            env=env,
            capture_output=True,  # the kernels' start-up chatter; shown if the run fails
            text=True,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{notebook.name} failed:\n{proc.stderr[-4000:]}")
        return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebook stems (default: every lesson)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (median)")
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "lessons").glob("*.ipynb"))
    if args.names:
        notebooks = [p for p in notebooks if p.stem in args.names]
    print(f"{'notebook':<28} {'here s':>8} {'laptop s':>9} {'ratio':>6}  < {BUDGET_S:.0f} s?")
    for notebook in notebooks:
        here, laptop = [], []
        for i in range(args.repeats):
            pair = [(here, {}), (laptop, LAPTOP)]
            for times, env in pair if i % 2 == 0 else pair[::-1]:  # alternate the order
                times.append(run(notebook, env))
        h, lap = statistics.median(here), statistics.median(laptop)
        verdict = "yes" if lap < BUDGET_S else "NO"
        print(f"{notebook.stem:<28} {h:8.1f} {lap:9.1f} {lap / h:6.2f}  {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

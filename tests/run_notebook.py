"""Execute one notebook as a reader's kernel would, and save it with its outputs.

Run by the Colab-like environment's own Python (``python run_notebook.py IN OUT``), so the
kernel is that environment's: the notebook's first cell installs labpkg there. The executed
copy is what the book build renders, so the page shows exactly this run. Exit status 0 when
every cell ran (a cell tagged ``raises-exception`` may raise); otherwise the failing cell's
error is printed and the partly executed notebook is still saved, for the report.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TIMEOUT = 600  # seconds per cell: a hung cell fails the run instead of stalling it


def main(source: str, target: str) -> int:
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT,
        kernel_name="python3",  # this interpreter's ipykernel
        resources={"metadata": {"path": str(Path(target).parent)}},  # the kernel's cwd
    )
    start, status = time.perf_counter(), 0
    try:
        client.execute()
    except CellExecutionError as error:
        print(error, file=sys.stderr)
        status = 1
    seconds = time.perf_counter() - start
    nbformat.write(notebook, target)
    print(json.dumps({"seconds": seconds, "ok": status == 0}))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

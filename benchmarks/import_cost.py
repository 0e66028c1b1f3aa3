"""``import labpkg`` cost beyond ``import torch`` (goal: at most 0.3 s).

Each sample is a fresh interpreter: ``import torch`` alone, then ``import torch, labpkg``;
the two are interleaved and the median difference is reported.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main(samples: int = 7) -> None:
    timed("import torch, labpkg")  # warm the file cache
    torch_only, with_labpkg = [], []
    for _ in range(samples):
        torch_only.append(timed("import torch"))
        with_labpkg.append(timed("import torch, labpkg"))
    extra = statistics.median(b - a for a, b in zip(torch_only, with_labpkg, strict=True))
    print(f"import torch         {statistics.median(torch_only):.2f} s")
    print(f"import torch, labpkg {statistics.median(with_labpkg):.2f} s")
    print(f"labpkg adds          {extra:.3f} s (goal <= 0.3 s)")


if __name__ == "__main__":
    main()

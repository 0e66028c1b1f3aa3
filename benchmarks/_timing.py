"""Paired timing: run A and B interleaved and report the median of the per-pair ratios.

This machine is noisy (bursts of slowdown with 2 threads), so a single A-then-B timing can be
off by several times; interleaving and the median of paired ratios cancel most of it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def paired_ratio(
    a: Callable[[], None], b: Callable[[], None], pairs: int = 7
) -> tuple[float, float, float]:
    """Median of time(b)/time(a) over ``pairs`` interleaved runs, plus the median times (s)."""
    a(), b()  # warm-up: first calls pay for lazy initialisation
    ratios, ta, tb = [], [], []
    for i in range(pairs):
        order = (a, b) if i % 2 == 0 else (b, a)  # alternate who goes first
        times = {}
        for fn in order:
            start = time.perf_counter()
            fn()
            times[fn] = time.perf_counter() - start
        ta.append(times[a])
        tb.append(times[b])
        ratios.append(times[b] / times[a])
    return statistics.median(ratios), statistics.median(ta), statistics.median(tb)

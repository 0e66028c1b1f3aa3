"""Figures of the optimizers chapter: paths on the valley, and the moving average's memory.

Both are drawn in the style of ``labpkg.figures.style`` and exported by ``labpkg.viz``; the numbers
come from ``labpkg.valley`` (the paths from the real ``torch.optim`` optimizers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from labpkg.figures.style import MAX_WIDTH_IN, legend_outside, line_colour, themed
from labpkg.figures.valley import CURVATURES, moving_average, valley_loss

__all__ = ["plot_moving_average", "plot_paths"]


@themed
def plot_paths(
    paths: Mapping[str, torch.Tensor], curvatures: Sequence[float] = CURVATURES
) -> Figure:
    """Optimizer paths on the valley ½·(a·x² + b·y²), one panel each, over its contours.

    Args:
        paths: ``{name: points}``, each (steps + 1, 2) as ``labpkg.valley.optimizer_path``
            returns; one panel per path, top to bottom, on the same axes.
        curvatures: (a, b) of the valley the paths ran on.

    Returns:
        A matplotlib ``Figure``.
    """
    points = torch.cat(list(paths.values()))
    x_low, x_high = min(float(points[:, 0].min()), -0.2), max(float(points[:, 0].max()), 0.2)
    y_high = max(float(points[:, 1].abs().max()), 0.2) * 1.15
    x_pad = 0.05 * (x_high - x_low)
    xs = torch.linspace(x_low - x_pad, x_high + x_pad, 200, dtype=torch.float64)
    ys = torch.linspace(-y_high, y_high, 120, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([grid_x, grid_y], dim=-1)  # (Y, X, 2)
    loss = 0.5 * (torch.as_tensor(curvatures, dtype=torch.float64) * grid**2).sum(-1)
    top = float(valley_loss(points[0], curvatures))  # the loss at the (first path's) start
    levels = [top * 0.5**k for k in range(8)][::-1]  # each contour half the loss of the next
    fig, axes = plt.subplots(
        len(paths), 1, figsize=(MAX_WIDTH_IN, 1.0 + 1.5 * len(paths)), sharex=True,
        sharey=True, squeeze=False, layout="constrained",
    )  # fmt: skip
    for i, (ax, (name, path)) in enumerate(zip(axes[:, 0], paths.items(), strict=True)):
        ax.contour(xs, ys, loss, levels=levels, colors="#b0b0b0", linewidths=0.8)
        ax.plot(path[:, 0], path[:, 1], "-o", color=line_colour(i), markersize=3,
                linewidth=1.2, label=name)  # fmt: skip
        ax.plot([0], [0], "*", color="#222222", markersize=10)  # the minimum
        ax.set_ylabel("y (steep)")
        legend_outside(ax)
    axes[-1, 0].set_xlabel("x (shallow)")
    return fig


@themed
def plot_moving_average(betas: Sequence[float], updates: int = 3000) -> Figure:
    """The moving average of a constant gradient of 1, started at zero, for several β.

    The curve is also the share of the average's weight that the most recent t gradients
    carry. A dot marks t = 1 / (1 − β), where the curve has reached about 63 % (1 − 1/e).

    Args:
        betas: the decay rates, one curve each (e.g. 0.9 and 0.999, Adam's β₁ and β₂).
        updates: the length of the x axis (logarithmic).

    Returns:
        A matplotlib ``Figure``.
    """
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.2), layout="constrained")
    t = torch.arange(1, updates + 1)
    for i, beta in enumerate(betas):
        average = moving_average(torch.ones(updates), beta)
        window = round(1 / (1 - beta))
        ax.plot(t, average, color=line_colour(i), label=f"β = {beta:g}")
        ax.plot([window], [average[window - 1]], "o", color=line_colour(i))
    ax.axhline(1 - 1 / math.e, color="#222222", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100, not powers of ten
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("update t (or: the most recent t gradients)")
    ax.set_ylabel("average (or: their weight)")
    ax.grid(alpha=0.4)
    legend_outside(ax)
    return fig

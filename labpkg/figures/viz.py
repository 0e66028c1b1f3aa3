"""Figures for the book (matplotlib only). Every function returns a ``Figure``.

Every figure is drawn in the style of ``labpkg.figures.style``: opaque white, near-black text of at
least ``MIN_FONT_PT`` points, at most ``MAX_WIDTH_IN`` inches wide (readable on a phone too),
legends above the axes so they never cover data, and the colour-blind-safe Okabe-Ito
palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from labpkg.figures.diagrams import draw_unet  # drawn from the model, not from numbers
from labpkg.figures.optimizer_figures import plot_moving_average, plot_paths  # chapter 12's
from labpkg.figures.style import (
    CLASS_COLOURS,
    DPI,
    MAX_WIDTH_IN,
    MIN_FONT_PT,
    THEME,
    class_cmap,
    contrast_ratio,
    legend_outside,
    line_colour,
    themed,
)
from labpkg.nn.labels import class_ids

__all__ = [
    "CLASS_COLOURS",
    "DPI",
    "MAX_WIDTH_IN",
    "MIN_FONT_PT",
    "THEME",
    "class_cmap",
    "contrast_ratio",
    "draw_unet",
    "plot_bars",
    "plot_batch_profile",
    "plot_class_frequencies",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_gradient_noise",
    "plot_history",
    "plot_moving_average",
    "plot_paths",
    "show_batch",
]


@themed
def plot_history(history: Any, keys: Sequence[str] | None = None) -> Figure:
    """Training curves: losses on top, metrics below, x = epoch (1-based).

    Args:
        history: a ``History`` (from ``Trainer.fit``).
        keys: the log keys to draw (default: all; ``val_`` twins drawn dashed).

    Returns:
        A matplotlib ``Figure``.
    """
    keys = list(keys or sorted(history.history))
    epochs = [e + 1 for e in history.epoch]
    base = sorted({k.removeprefix("val_") for k in keys})
    losses = [k for k in base if k.endswith("loss")]
    others = [k for k in base if not k.endswith("loss") and k != "learning_rate"]
    panels = [p for p in (losses, others) if p] or [[]]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(MAX_WIDTH_IN, 2.6 * len(panels)), squeeze=False,
        sharex=True, layout="constrained",
    )  # fmt: skip
    for ax, names in zip(axes[:, 0], panels, strict=True):
        for i, name in enumerate(names):
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in keys and key in history.history:
                    # epochs without a value (validation every few epochs: NaN) are left
                    # out, so the measured points join up; markers show where they are
                    xs, ys = _measured(epochs, history.history[key])
                    marker = "o" if len(xs) <= 30 else None
                    ax.plot(xs, ys, style, color=line_colour(i), marker=marker, label=key)
        ax.set_ylabel("loss" if names is losses else "score")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.4)
        if names:
            legend_outside(ax)
    axes[-1, 0].set_xlabel("epoch")
    return fig


def _measured(xs: Sequence[float], ys: Sequence[float]) -> tuple[list, list]:
    """The (x, y) pairs whose y is a number (NaN marks an epoch that was not measured)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y == y]  # NaN != NaN
    return [x for x, _ in pairs], [y for _, y in pairs]


IGNORED_GREY = "#9e9e9e"  # pixels without a class (ignore_index) in mask drawings


@themed
def show_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    preds: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
    num_classes: int = 4,
    max_items: int = 8,
    titles: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    columns: int = 4,
) -> Figure:
    """A grid: images on the first row, true masks below, then one row per prediction, and
    a key of the class colours underneath. More than ``columns`` images wrap into a second
    band of rows (8 images: two bands of 4), so each image stays large enough on a phone.

    Args:
        images: (B, 3, H, W) floats in [0, 1].
        masks: (B, H, W) class ids; other values (an ``ignore_index`` such as 255) are grey.
        preds: (B, H, W) class ids or (B, C, H, W) scores (argmaxed), or a dict of them
            whose keys label the rows (e.g. ``{"epoch 1": ..., "epoch 5": ...}``).
        num_classes: classes for the colour map.
        max_items: at most this many columns.
        titles: one title per column (optional).
        class_names: names for the key (default: the shapes' classes when there are 4 or
            fewer, else "class k").
        columns: at most this many images side by side (default 4).

    Returns:
        A matplotlib ``Figure``.
    """
    n = min(len(images), max_items)
    rows: list[tuple[str, torch.Tensor]] = [("image", images), ("true mask", masks)]
    if isinstance(preds, Mapping):
        rows += list(preds.items())
    elif preds is not None:
        rows.append(("prediction", preds))
    rows = [(k, class_ids(v) if k != "image" and v.ndim == 4 else v) for k, v in rows]
    wide = min(n, columns)
    bands = -(-n // wide)  # ceil: image k sits in band k // wide, column k % wide
    # inches per image: 1.4 in of the width for the labels, and the whole grid at most
    # about 6.3 in tall, so it fits a laptop's screen at once
    cell = min(1.1, (MAX_WIDTH_IN - 1.4) / wide, 6.0 / (bands * len(rows)) - 0.1)
    fig, axes = plt.subplots(
        bands * len(rows), wide, squeeze=False, layout="constrained",
        figsize=(1.4 + cell * wide, 0.3 + (cell + 0.1) * bands * len(rows)),
    )  # fmt: skip
    cmap = class_cmap(num_classes).with_extremes(over=IGNORED_GREY)  # 255: "not labelled"
    for ax in axes.flat:
        ax.set_axis_off()  # the cells of a last band left empty stay blank
    for k in range(n):
        band, c = divmod(k, wide)
        for r, (label, data) in enumerate(rows):
            ax = axes[band * len(rows) + r][c]
            ax.set_axis_on()
            if label == "image":
                ax.imshow(data[k].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            else:
                ax.imshow(data[k].cpu().numpy(), cmap=cmap, vmin=0, vmax=num_classes - 1,
                          interpolation="nearest")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center")
            if r == 0 and titles is not None:
                ax.set_title(titles[k], fontsize=MIN_FONT_PT)
    ignored = any(bool((v > num_classes - 1).any()) for k, v in rows if k != "image")
    _class_key(fig, num_classes, class_names, ignored)
    return fig


def _class_key(fig: Figure, num_classes: int, names, ignored: bool) -> None:
    """A legend of the class colours under the grid (and grey for ignored pixels)."""
    from matplotlib.patches import Patch

    from labpkg.data.synthetic import CLASS_NAMES

    if names is None:
        known = num_classes <= len(CLASS_NAMES)
        names = CLASS_NAMES[:num_classes] if known else [f"class {k}" for k in range(num_classes)]
    handles = [Patch(color=CLASS_COLOURS[k], label=n) for k, n in enumerate(names)]
    if ignored:
        handles.append(Patch(color=IGNORED_GREY, label="ignored"))
    columns = 2 if len(handles) <= 4 else 3  # fits the narrowest grid (one or two images)
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, frameon=False)


@themed
def plot_class_frequencies(masks: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Bar chart of the share of pixels in each class (log scale: background dominates)."""
    counts = torch.bincount(masks.reshape(-1), minlength=len(class_names)).double()
    share = (counts / counts.sum()).tolist()
    return plot_bars(dict(zip(class_names, share, strict=True)), "share of pixels", "{:.1%}",
                     colours=CLASS_COLOURS[: len(class_names)])  # fmt: skip


@themed
def plot_bars(
    values: Mapping[str, float],
    ylabel: str,
    label: str = "{:.2g}",
    colours: Sequence[str] | None = None,
) -> Figure:
    """Named values as bars on a log scale (for values orders of magnitude apart), each
    labelled with its value.

    Args:
        values: ``{name: value > 0}``, one bar each, in order.
        ylabel: the axis label.
        label: the format of the number written above each bar.
        colours: one colour per bar (default: the palette in order).

    Returns:
        A matplotlib ``Figure``.
    """
    heights = list(values.values())
    colours = colours or [line_colour(i) for i in range(len(heights))]
    fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
    ax.bar(list(values), heights, color=colours)
    ax.set_yscale("log")
    ax.set_ylim(min(v for v in heights if v > 0) / 3, max(heights) * 3)  # room for the labels
    ax.set_ylabel(ylabel)
    for i, value in enumerate(heights):
        ax.text(i, value * 1.15, label.format(value), ha="center", va="bottom")
    return fig


@themed
def plot_batch_profile(profiles: Sequence[Any]) -> Figure:
    """Step time, throughput and activation memory against batch size (``StepProfile`` list)."""
    sizes = [p.batch_size for p in profiles]
    panels = [
        ("ms per step", [p.ms_per_step for p in profiles]),
        ("images per second", [p.images_per_s for p in profiles]),
        ("activation MB", [p.activation_mb for p in profiles]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH_IN, 2.8), layout="constrained")
    for ax, (label, values) in zip(axes, panels, strict=True):
        ax.plot(sizes, values, marker="o", color=line_colour(0))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_title(label)
        ax.grid(alpha=0.4)
    return fig


@themed
def plot_gradient_noise(noise: dict[int, float]) -> Figure:
    """Measured gradient variance against batch size, with the 1/b line through the first point."""
    sizes, values = list(noise), list(noise.values())
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.2), layout="constrained")
    ax.loglog(sizes, values, "o-", color=line_colour(0), label="measured")
    ideal = [values[0] * sizes[0] / b for b in sizes]
    ax.loglog(sizes, ideal, "--", color=line_colour(1), label="∝ 1 / batch size")
    ax.set_xlabel("batch size")
    ax.set_ylabel("gradient variance")
    ax.grid(alpha=0.4, which="both")
    legend_outside(ax)
    return fig


@themed
def plot_confusion_matrix(cm: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """The confusion matrix as an image, rows normalised: each row shows where a class went."""
    counts = cm.double()
    rows = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    cmap = matplotlib.colormaps["Blues"]
    image = ax.imshow(rows.numpy(), cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for (i, j), value in _cells(rows):
        colour = max(("black", "white"), key=lambda ink: contrast_ratio(ink, cmap(value)))
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def _cells(matrix: torch.Tensor):
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            yield (i, j), float(matrix[i, j])


_LINESTYLES = ("-", "--", "-.", ":")


@themed
def plot_curves(
    curves: Mapping[str, Sequence[float]],
    ylabel: str = "loss",
    xlabel: str = "epoch",
    x: Sequence[float] | Mapping[str, Sequence[float]] | None = None,
    logx: bool = False,
    logy: bool = False,
) -> Figure:
    """Several named curves on one axis (x counts from 1 unless ``x`` is given).

    Args:
        curves: ``{name: values}``; one line each.
        ylabel, xlabel: axis labels.
        x: shared x values (default 1, 2, ...), or ``{name: x values}`` per curve (e.g.
            updates, which differ between batch sizes).
        logx: logarithmic x axis (e.g. for learning rates).
        logy: logarithmic y axis (e.g. a loss that diverges beside ones that shrink).

    Returns:
        A matplotlib ``Figure``.
    """
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.4), layout="constrained")
    for i, (name, values) in enumerate(curves.items()):
        own = x[name] if isinstance(x, Mapping) else x
        xs = list(own) if own is not None else list(range(1, len(values) + 1))
        marker = "o" if len(values) <= 30 else None
        # curves that coincide (a constant rate under a schedule that has not moved yet)
        # stay visible: each later line is thinner and dashed differently than the one below
        style = {"linewidth": max(3.5 - 0.6 * i, 1.2), "linestyle": _LINESTYLES[i % 4]}
        ax.plot(xs, values, marker=marker, color=line_colour(i), label=name, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    elif x is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.4)
    legend_outside(ax)
    return fig

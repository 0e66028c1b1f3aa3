"""Figures for the book (matplotlib only). Every function returns a ``Figure``.

Figures are drawn on an opaque white background with near-black text of at least
``MIN_FONT_PT`` points, at ``DPI`` dots per inch and at most ``MAX_WIDTH_IN`` inches wide, so
that on the book's pages (light or dark theme) and in Colab they show at full size and read
well. Legends sit outside the axes, so they never cover data. Lines use the colour-blind-safe
Okabe-Ito palette.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "CLASS_COLOURS",
    "DPI",
    "MAX_WIDTH_IN",
    "MIN_FONT_PT",
    "THEME",
    "class_cmap",
    "contrast_ratio",
    "plot_batch_profile",
    "plot_class_frequencies",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_gradient_noise",
    "plot_history",
    "show_batch",
]

#: Smallest font size of any text in a labpkg figure (points).
MIN_FONT_PT = 11
#: Resolution of every figure; with ``MAX_WIDTH_IN`` it keeps figures within the page column.
DPI = 100
#: Widest figure in inches; 7 in at 100 dpi is 700 px, narrower than the book's text column.
MAX_WIDTH_IN = 7.0
_INK = "#222222"
#: Matplotlib settings applied while a labpkg figure is drawn.
THEME = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    # opaque white: the dark site theme puts a light-grey plate behind transparent images
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "font.size": MIN_FONT_PT,
    "axes.titlesize": MIN_FONT_PT + 1,
    "axes.labelsize": MIN_FONT_PT,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": MIN_FONT_PT + 1,
    "text.color": _INK,
    "axes.labelcolor": _INK,
    "axes.edgecolor": _INK,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "grid.color": "#b0b0b0",
    "legend.frameon": False,
}

#: background, circle, square, triangle (colour-blind-safe Okabe-Ito hues)
CLASS_COLOURS = ("#222222", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#F0E442")
_LINE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _themed(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw the figure with ``THEME`` (text is coloured when created, so the whole call)."""

    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with plt.rc_context(THEME):
            figure = plot(*args, **kwargs)
            # In a Jupyter kernel the first figure loads the inline backend, which switches
            # rcParams["interactive"] on. rc_context restores every rcParam on exit, so it would
            # switch it off again, and matplotlib-inline would then show no later figure at all
            # (it displays only figures drawn while interactive). Keep what the body set.
            interactive = matplotlib.is_interactive()
        matplotlib.interactive(interactive)
        return figure

    return wrapper


def class_cmap(num_classes: int) -> ListedColormap:
    """A discrete colour map for class masks."""
    return ListedColormap(CLASS_COLOURS[:num_classes])


def _legend_outside(ax: Axes) -> None:
    """A legend to the right of the axes: it can never hide a curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _line_colour(i: int) -> str:
    return _LINE_COLOURS[i % len(_LINE_COLOURS)]


@_themed
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
                    values = history.history[key]
                    marker = "o" if len(epochs) <= 30 else None
                    ax.plot(epochs, values, style, color=_line_colour(i), marker=marker, label=key)
        ax.set_ylabel("loss" if names is losses else "score")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.4)
        if names:
            _legend_outside(ax)
    axes[-1, 0].set_xlabel("epoch")
    return fig


@_themed
def show_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    preds: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
    num_classes: int = 4,
    max_items: int = 8,
    titles: Sequence[str] | None = None,
) -> Figure:
    """A grid: images on the first row, true masks below, then one row per prediction.

    Args:
        images: (B, 3, H, W) floats in [0, 1].
        masks: (B, H, W) class ids.
        preds: (B, H, W) class ids or (B, C, H, W) scores (argmaxed), or a dict of them
            whose keys label the rows (e.g. ``{"epoch 1": ..., "epoch 5": ...}``).
        num_classes: classes for the colour map.
        max_items: at most this many columns.
        titles: one title per column (optional).

    Returns:
        A matplotlib ``Figure``.
    """
    n = min(len(images), max_items)
    rows: list[tuple[str, torch.Tensor]] = [("image", images), ("true mask", masks)]
    if isinstance(preds, Mapping):
        rows += list(preds.items())
    elif preds is not None:
        rows.append(("prediction", preds))
    rows = [(k, v.argmax(dim=1) if k != "image" and v.ndim == 4 else v) for k, v in rows]
    cell = min(0.85, (MAX_WIDTH_IN - 1.0) / n)  # inches per image; 1 in for the row labels
    fig, axes = plt.subplots(
        len(rows), n, figsize=(1.0 + cell * n, 0.3 + cell * len(rows)), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    cmap = class_cmap(num_classes)
    for r, (label, data) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            if label == "image":
                ax.imshow(data[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            else:
                ax.imshow(data[c].cpu().numpy(), cmap=cmap, vmin=0, vmax=num_classes - 1,
                          interpolation="nearest")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center")
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=MIN_FONT_PT)
    return fig


@_themed
def plot_class_frequencies(masks: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Bar chart of the share of pixels in each class (log scale: background dominates)."""
    counts = torch.bincount(masks.reshape(-1), minlength=len(class_names)).double()
    share = (counts / counts.sum()).tolist()
    fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
    ax.bar(class_names, share, color=CLASS_COLOURS[: len(class_names)])
    ax.set_yscale("log")
    ax.set_ylim(min(v for v in share if v > 0) / 3, 3)  # room above the bars for the labels
    ax.set_ylabel("share of pixels")
    for i, value in enumerate(share):
        ax.text(i, value * 1.15, f"{value:.1%}", ha="center", va="bottom")
    return fig


@_themed
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
        ax.plot(sizes, values, marker="o", color=_line_colour(0))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_title(label)
        ax.grid(alpha=0.4)
    return fig


@_themed
def plot_gradient_noise(noise: dict[int, float]) -> Figure:
    """Measured gradient variance against batch size, with the 1/b line through the first point."""
    sizes, values = list(noise), list(noise.values())
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.2), layout="constrained")
    ax.loglog(sizes, values, "o-", color=_line_colour(0), label="measured")
    ideal = [values[0] * sizes[0] / b for b in sizes]
    ax.loglog(sizes, ideal, "--", color=_line_colour(1), label="∝ 1 / batch size")
    ax.set_xlabel("batch size")
    ax.set_ylabel("gradient variance")
    ax.grid(alpha=0.4, which="both")
    _legend_outside(ax)
    return fig


@_themed
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


def contrast_ratio(a: Any, b: Any) -> float:
    """WCAG contrast ratio of two colours, from 1 (same) to 21 (black on white).

    Example:
        >>> round(contrast_ratio("black", "white"), 1)
        21.0
    """
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _luminance(colour: Any) -> float:
    """WCAG relative luminance of a matplotlib colour."""
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
                for c in matplotlib.colors.to_rgb(colour)]  # fmt: skip
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def _cells(matrix: torch.Tensor):
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            yield (i, j), float(matrix[i, j])


@_themed
def plot_curves(
    curves: Mapping[str, Sequence[float]],
    ylabel: str = "loss",
    xlabel: str = "epoch",
    x: Sequence[float] | None = None,
    logx: bool = False,
) -> Figure:
    """Several named curves on one axis (x counts from 1 unless ``x`` is given).

    Args:
        curves: ``{name: values}``; one line each.
        ylabel, xlabel: axis labels.
        x: shared x values (default 1, 2, ...).
        logx: logarithmic x axis (e.g. for learning rates).

    Returns:
        A matplotlib ``Figure``.
    """
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.4), layout="constrained")
    for i, (name, values) in enumerate(curves.items()):
        xs = list(x) if x is not None else list(range(1, len(values) + 1))
        marker = "o" if len(values) <= 30 else None
        ax.plot(xs, values, marker=marker, color=_line_colour(i), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    elif x is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.4)
    _legend_outside(ax)
    return fig

"""Figures for the book (matplotlib only). Every function returns a ``Figure``.

Figures have a transparent background and mid-grey text and axes, and lines use the Okabe-Ito
palette, so they read on both the site's light and dark themes (and in Colab's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "CLASS_COLOURS",
    "THEME",
    "class_cmap",
    "plot_batch_profile",
    "plot_class_frequencies",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_gradient_noise",
    "plot_history",
    "show_batch",
]

_GREY = "#8a8a8a"
#: Matplotlib settings applied while a labpkg figure is drawn.
THEME = {
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.transparent": True,
    "text.color": _GREY,
    "axes.labelcolor": _GREY,
    "axes.edgecolor": _GREY,
    "xtick.color": _GREY,
    "ytick.color": _GREY,
    "grid.color": _GREY,
    "legend.facecolor": "none",
    "legend.edgecolor": _GREY,
}


def _themed(plot: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw the figure with ``THEME`` (text is coloured when created, so the whole call)."""

    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with plt.rc_context(THEME):
            return plot(*args, **kwargs)

    return wrapper


#: background, circle, square, triangle (colour-blind-safe Okabe-Ito hues)
CLASS_COLOURS = ("#222222", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#F0E442")


def class_cmap(num_classes: int) -> ListedColormap:
    """A discrete colour map for class masks."""
    return ListedColormap(CLASS_COLOURS[:num_classes])


@_themed
def plot_history(history: Any, keys: Sequence[str] | None = None) -> Figure:
    """Training curves: losses on the left, metrics on the right, x = epoch (1-based).

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
    panels = [p for p in (losses, others) if p]
    width = max(len(panels), 1)
    fig, axes = plt.subplots(1, width, figsize=(5 * width, 3.2), squeeze=False)
    for ax, names in zip(axes[0], panels, strict=False):
        for i, name in enumerate(names):
            colour = CLASS_COLOURS[1 + i % (len(CLASS_COLOURS) - 1)]
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in keys and key in history.history:
                    ax.plot(
                        epochs, history.history[key], style, color=colour, marker="o", label=key
                    )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
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
    fig, axes = plt.subplots(len(rows), n, figsize=(1.5 * n, 1.55 * len(rows)), squeeze=False)
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
                ax.set_ylabel(label, fontsize=9)
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout()
    return fig


@_themed
def plot_class_frequencies(masks: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Bar chart of the share of pixels in each class (log scale: background dominates)."""
    counts = torch.bincount(masks.reshape(-1), minlength=len(class_names)).double()
    share = (counts / counts.sum()).tolist()
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.bar(class_names, share, color=CLASS_COLOURS[: len(class_names)])
    ax.set_yscale("log")
    ax.set_ylabel("share of pixels")
    for i, value in enumerate(share):
        ax.text(i, value, f"{value:.1%}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


@_themed
def plot_batch_profile(profiles: Sequence[Any]) -> Figure:
    """Step time, throughput and activation memory against batch size (``StepProfile`` list)."""
    sizes = [p.batch_size for p in profiles]
    panels = [
        ("ms per step", [p.ms_per_step for p in profiles]),
        ("images per second", [p.images_per_s for p in profiles]),
        ("activation memory (MB)", [p.activation_mb for p in profiles]),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, (label, values) in zip(axes, panels, strict=True):
        ax.plot(sizes, values, marker="o", color=CLASS_COLOURS[2])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@_themed
def plot_gradient_noise(noise: dict[int, float]) -> Figure:
    """Measured gradient variance against batch size, with the 1/b line through the first point."""
    sizes, values = list(noise), list(noise.values())
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.loglog(sizes, values, "o-", color=CLASS_COLOURS[1], label="measured")
    ax.loglog(
        sizes,
        [values[0] * sizes[0] / b for b in sizes],
        "--",
        color="#888888",
        label="∝ 1 / batch size",
    )
    ax.set_xlabel("batch size")
    ax.set_ylabel("gradient variance")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@_themed
def plot_confusion_matrix(cm: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """The confusion matrix as an image, rows normalised: each row shows where a class went."""
    counts = cm.double()
    rows = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(rows.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for (i, j), value in _cells(rows):
        colour = "white" if value > 0.5 else "black"
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def _cells(matrix: torch.Tensor):
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            yield (i, j), float(matrix[i, j])


@_themed
def plot_curves(
    curves: Mapping[str, Sequence[float]], ylabel: str = "loss", xlabel: str = "epoch"
) -> Figure:
    """Several named curves on one axis (x counts from 1)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for i, (name, values) in enumerate(curves.items()):
        colour = CLASS_COLOURS[1 + i % (len(CLASS_COLOURS) - 1)]
        ax.plot(range(1, len(values) + 1), values, marker="o", color=colour, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

"""Figures for the book (matplotlib only). Every function returns a ``Figure``.

Colours come from one palette with enough contrast on both the site's light and dark themes;
figures are drawn on an opaque white background so they read the same in either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

__all__ = ["CLASS_COLOURS", "plot_history", "show_batch", "class_cmap"]

#: background, circle, square, triangle (colour-blind-safe Okabe-Ito hues)
CLASS_COLOURS = ("#222222", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#F0E442")


def class_cmap(num_classes: int) -> ListedColormap:
    """A discrete colour map for class masks."""
    return ListedColormap(CLASS_COLOURS[:num_classes])


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
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    preds: torch.Tensor | None = None,
    num_classes: int = 4,
    max_items: int = 8,
    titles: Sequence[str] | None = None,
) -> Figure:
    """A grid: images on the first row, true masks below, predicted masks (if given) last.

    Args:
        images: (B, 3, H, W) floats in [0, 1].
        masks: (B, H, W) class ids.
        preds: (B, H, W) class ids or (B, C, H, W) scores (argmaxed), optional.
        num_classes: classes for the colour map.
        max_items: at most this many columns.
        titles: one title per column (optional).

    Returns:
        A matplotlib ``Figure``.
    """
    n = min(len(images), max_items)
    if preds is not None and preds.ndim == 4:
        preds = preds.argmax(dim=1)
    rows = [("image", images), ("mask", masks)] + (
        [("prediction", preds)] if preds is not None else []
    )
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.7 * len(rows)), squeeze=False)
    cmap = class_cmap(num_classes)
    for r, (label, data) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            if label == "image":
                ax.imshow(data[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            else:
                ax.imshow(
                    data[c].cpu().numpy(),
                    cmap=cmap,
                    vmin=0,
                    vmax=num_classes - 1,
                    interpolation="nearest",
                )
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
            if r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout()
    return fig

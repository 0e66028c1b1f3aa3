"""Diagrams drawn from a model's structure (matplotlib only), in the book's figure style.

``labpkg.viz`` re-exports them, so chapters call ``labpkg.viz.draw_unet``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from labpkg.figures.style import MAX_WIDTH_IN, line_colour, themed

__all__ = ["draw_unet"]


@themed
def draw_unet(rows: Sequence[Any]) -> Figure:
    """The U drawn from ``layer_shapes``: one box per block, placed by its resolution level,
    its height growing with the channels; solid arrows follow the forward pass, dashed ones
    are the skip connections from each encoder level to the decoder at the same level.

    Args:
        rows: ``labpkg.layer_shapes(model)``.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 4.2), layout="constrained")
    widest = max(r.shape[1] for r in rows)
    centres = []
    for i, row in enumerate(rows):
        x, height = 1.5 * i, 0.2 + 0.5 * row.shape[1] / widest  # height: relative channels
        colour = line_colour({"encoder": 0, "bottom": 3, "decoder": 1, "head": 2}[row.part])
        ax.add_patch(Rectangle((x - 0.4, -row.level - height / 2), 0.8, height, color=colour))
        _, c, h, w = row.shape
        label = f"{row.name}\n{c} ch\n{h}×{w}"
        ax.text(x, -row.level - height / 2 - 0.06, label, ha="center", va="top")
        centres.append((x, -row.level))
    for start, end in zip(centres, centres[1:], strict=False):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12))
    encoder = {r.level: 1.5 * i for i, r in enumerate(rows) if r.part == "encoder"}
    for i, row in enumerate(rows):
        if row.part == "decoder":  # the skip connection arriving at this level
            ax.add_patch(FancyArrowPatch(
                (encoder[row.level], -row.level), (1.5 * i, -row.level),
                connectionstyle="arc3,rad=-0.2",
                arrowstyle="-|>", linestyle="--", mutation_scale=12,
            ))  # fmt: skip
    ax.set_xlim(-0.9, 1.5 * (len(rows) - 1) + 0.9)
    ax.set_ylim(-max(r.level for r in rows) - 1.4, 0.9)
    ax.set_axis_off()
    ax.set_title("U-Net: what each block outputs (dashed: skip connections)")
    return fig

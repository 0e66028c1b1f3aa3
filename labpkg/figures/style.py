"""How labpkg figures look: size, resolution, colours and contrast (matplotlib only).

Figures are drawn on an opaque white background with near-black text of at least
``MIN_FONT_PT`` points, at ``DPI`` dots per inch and at most ``MAX_WIDTH_IN`` inches wide, so
that on the book's pages (light or dark theme) and in Colab they show at full size and read
well, and that on a phone, where a figure shrinks to the screen's width, the text stays
readable: what counts there is the text size per inch of figure width (``MIN_FONT_PT /
MAX_WIDTH_IN``), as the phone scales the whole picture down. The tests check every figure
against these numbers, in the browser at a laptop's width and at a phone's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

__all__ = [
    "CLASS_COLOURS",
    "DPI",
    "MAX_WIDTH_IN",
    "MIN_FONT_PT",
    "THEME",
    "class_cmap",
    "contrast_ratio",
    "legend_outside",
    "line_colour",
    "themed",
]

#: Smallest font size of any text in a labpkg figure (points).
MIN_FONT_PT = 12
#: Resolution of every figure; with ``MAX_WIDTH_IN`` it keeps figures within the page column.
DPI = 100
#: Widest figure in inches; 6 in at 100 dpi is 600 px, narrower than the book's text column
#: on a laptop, and on a phone (about 360 px wide) 12-point text still shows at about 10 px.
MAX_WIDTH_IN = 6.0
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


def themed(plot: Callable[..., Figure]) -> Callable[..., Figure]:
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


def legend_outside(ax: Axes) -> None:
    """A legend above the axes, in as many columns as fit: it can never hide a curve, and
    the plot keeps the figure's whole width (a legend at the side took a third of it, which
    a phone's screen cannot spare)."""
    labels = ax.get_legend_handles_labels()[1]
    longest = max((len(label) for label in labels), default=1)
    entry_pt = (0.6 * longest + 4.0) * MIN_FONT_PT  # marker, gap and text, roughly
    room_pt = 0.85 * ax.figure.get_figwidth() * 72  # the axes' share of the figure, roughly
    columns = max(1, min(len(labels), int(room_pt // entry_pt)))
    rows = -(-len(labels) // columns)  # ceil
    if rows > 1:  # a taller figure, so the legend's rows take no height from the plot
        figure = ax.figure
        figure.set_figheight(figure.get_figheight() + (rows - 1) * 1.4 * MIN_FONT_PT / 72)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0, ncols=columns,
              fontsize=MIN_FONT_PT)  # fmt: skip


def line_colour(i: int) -> str:
    return _LINE_COLOURS[i % len(_LINE_COLOURS)]


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

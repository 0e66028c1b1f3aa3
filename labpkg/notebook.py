"""Notebook display helpers, so a chapter needs no import besides ``labpkg``.

IPython is imported only when one of these is called: ``import labpkg`` stays light and works
in a plain terminal.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

__all__ = ["show_source", "show_image", "glue"]


def show_source(obj: Any) -> Any:
    """The source code of a labpkg function, class or method, syntax-highlighted.

    Chapters show the package's own code with it, so the page never drifts from what runs.

    Args:
        obj: e.g. ``labpkg.Trainer._train_one_epoch``.

    Returns:
        An ``IPython.display.Code``; display it (last line of a cell).
    """
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")


def show_image(path: str | os.PathLike) -> Any:
    """A PNG or JPEG file, shown in the notebook (e.g. one a callback saved).

    Returns:
        An ``IPython.display.Image``; display it (last line of a cell).
    """
    from IPython.display import Image

    return Image(filename=os.fspath(path))


def glue(name: str, value: Any) -> Any:
    """Name a computed value so the page's prose can print it: ``{glue:text}`name:.3f```.

    The sentence then shows what the cell computed on the machine that built the page, and
    cannot drift from it. Where the book's builder (``myst_nb``) is not installed, as on
    Colab, it does nothing: the printed output of the cell says the same.

    Args:
        name: a name unique within the chapter.
        value: a number (or short text); give plain Python numbers, e.g. ``float(x)``.

    Returns:
        ``value``, so a cell can glue and use a number in one line.

    Example:
        >>> glue("epochs", 5)
        5
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # Colab or a plain Jupyter: nothing to paste into
        return value
    myst_glue(name, value, display=False)
    return value

"""Notebook display helpers, so a chapter needs no import besides ``labpkg``.

IPython is imported only when one of these is called: ``import labpkg`` stays light and works
in a plain terminal.
"""

from __future__ import annotations

import functools
import inspect
import os
import textwrap
from typing import Any

__all__ = ["show_source", "show_image", "glue"]


def show_source(obj: Any) -> Any:
    """The source code of a labpkg function, class or method, syntax-highlighted.

    Chapters show the package's own code with it, so the page never drifts from what runs.
    A method loses its class's indentation, and a line longer than the book's code column
    wraps (the package's lines are longer than the lessons') instead of scrolling sideways.

    Args:
        obj: e.g. ``labpkg.Trainer.train_step``.

    Returns:
        An ``IPython.display.Code``; display it (last line of a cell).
    """
    source_code = _source_code_class()  # IPython loads only when asked for
    return source_code(textwrap.dedent(inspect.getsource(obj)), language="python")


@functools.cache
def _source_code_class() -> type:
    from IPython.display import Code

    class SourceCode(Code):
        """``IPython.display.Code`` whose long lines wrap in HTML (the book, Jupyter)."""

        def _repr_html_(self) -> str:
            wrap = "<style>.tll-source pre{white-space:pre-wrap;overflow-wrap:anywhere}</style>"
            return f'<div class="tll-source">{wrap}{super()._repr_html_()}</div>'

    return SourceCode


def show_image(path: str | os.PathLike) -> Any:
    """A PNG or JPEG file, shown in the notebook (e.g. one a callback saved).

    Returns:
        An ``IPython.display.Image``; display it (last line of a cell).
    """
    from IPython.display import Image

    return Image(filename=os.fspath(path))


#: Where myst-nb's glue keeps a value: an output whose MIME types carry this prefix, which
#: notebook front ends do not render and the book build reads back (``{glue:text}`name```).
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: Any) -> None:
    """Name a computed value so the page's prose can print it: ``{glue:text}`name:.3f```.

    The sentence then shows what the cell computed on the machine that ran the notebook, and
    cannot drift from it. The value is stored as a hidden output of the cell, in the format
    of myst-nb's ``glue`` (so a kernel needs no book tooling installed, as on Colab); a
    notebook shows nothing for it. Outside IPython it does nothing.

    Args:
        name: a name unique within the chapter.
        value: a number (or short text); give plain Python numbers, e.g. ``float(x)``.

    Example:
        >>> glue("epochs", 5)  # in a plain interpreter: stores nothing, shows nothing
    """
    try:
        from IPython import get_ipython
    except ImportError:  # no IPython at all: nothing to store the value in
        return
    shell = get_ipython()
    if shell is None:  # a plain interpreter or script
        return
    bundle, metadata = shell.display_formatter.format(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    from IPython.display import display

    display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)

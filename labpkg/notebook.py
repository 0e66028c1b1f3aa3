"""Notebook display helpers, so a chapter needs no import besides ``labpkg``.

IPython is imported only when one of these is called: ``import labpkg`` stays light and works
in a plain terminal.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

__all__ = ["show_source", "show_image"]


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

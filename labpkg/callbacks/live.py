"""``LivePlot``: a loss/metric figure that redraws in place in a notebook after every epoch."""

from __future__ import annotations

from collections.abc import Sequence

from labpkg.callbacks.base import Callback
from labpkg.callbacks.history import History

__all__ = ["LivePlot", "in_notebook"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (Jupyter, Colab, the book's build); False in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


class LivePlot(Callback):
    """Redraw the training curves after each epoch, in one output (one display handle).

    In a terminal it does nothing, so the same code runs as a script.

    Args:
        keys: log keys to plot (default: all but ``learning_rate``).

    Example:
        >>> live = LivePlot(keys=["loss", "val_loss"])  # then: fit(..., callbacks=[live])
        >>> live.on_train_begin()  # in a terminal: records the epochs, draws nothing
        >>> live.on_epoch_end(0, {"loss": 0.9, "val_loss": 1.0})
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    rank_zero_only = True

    def __init__(self, keys: Sequence[str] | None = None) -> None:
        super().__init__()
        self.keys = list(keys) if keys is not None else None
        self._handle = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        # our own record: the Trainer's History runs after us and has not seen this epoch yet
        self._history, self._handle = History(), None
        self._enabled = in_notebook()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._history.on_epoch_end(epoch, logs)
        if not self._enabled:
            return
        import matplotlib.pyplot as plt
        from IPython.display import display

        figure = self._history.plot(self.keys)
        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)
        plt.close(figure)  # the handle holds the image; an open figure would print twice

"""Ctrl-C during ``fit`` lands between mini-batches, never inside ``optimizer.step()``.

Python raises ``KeyboardInterrupt`` wherever the program happens to be, which could be halfway
through an update (some weights moved, others not) or through writing a checkpoint. While
``fit`` runs, the first Ctrl-C (or a notebook's *stop* button) only sets a flag; the loop
raises ``KeyboardInterrupt`` itself at the next mini-batch boundary, and ``fit`` ends
cleanly. A second Ctrl-C interrupts at once, as usual.

``fitting(trainer)`` is the context ``fit`` trains in: the deferred Ctrl-C, and whatever holds
only while training runs, undone however ``fit`` ends.

``kill``, job schedulers and Colab stop a program with SIGTERM instead, whose default ends the
process wherever it is: no history, a checkpoint's temporary file left behind. A command line
that wants SIGTERM to mean "stop cleanly" runs inside ``TerminateAsInterrupt``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

from labpkg.core import distributed

__all__ = ["DeferredInterrupt", "SignalContext", "TerminateAsInterrupt", "fitting"]


class SignalContext:
    """A context that handles one signal with ``_handle`` and then puts back the handler it
    found. Python sets handlers only in the main thread; elsewhere the context does nothing."""

    signum: signal.Signals
    default: Any  # put back when the handler found was not set from Python

    def __init__(self) -> None:
        self._previous = None
        self._installed = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.signum, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        raise NotImplementedError

    def _restore(self) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else self.default
            signal.signal(self.signum, previous)
            self._installed = False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._restore()


class DeferredInterrupt(SignalContext):
    """A context in which SIGINT is held until ``check()`` (main thread only; else a no-op).

    Example:
        >>> with DeferredInterrupt() as interrupt:
        ...     interrupt.check()  # nothing pending: returns
    """

    signum, default = signal.SIGINT, signal.default_int_handler

    def __init__(self) -> None:
        super().__init__()
        self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self._restore()  # a second Ctrl-C goes to the previous handler: it interrupts at once

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` here if Ctrl-C was pressed since the last check."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


class TerminateAsInterrupt(SignalContext):
    """A context in which SIGTERM does what Ctrl-C (SIGINT) does (main thread only; else a no-op).

    SIGTERM goes to whatever handles SIGINT at that moment: during ``fit`` that is
    ``DeferredInterrupt``, so training stops at the next mini-batch boundary and ``fit``
    returns; elsewhere Python's handler raises ``KeyboardInterrupt``. ``received`` keeps the
    signal's number, so the program can exit with status 128 + 15, as a process ended by
    SIGTERM would.

    Example:
        >>> with TerminateAsInterrupt() as terminate:
        ...     pass
        >>> terminate.received is None
        True
    """

    signum, default = signal.SIGTERM, signal.SIG_DFL

    def __init__(self) -> None:
        super().__init__()
        self.received: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # SIGINT ignored (a background job) or default: stop anyway
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)


@contextlib.contextmanager
def fitting(trainer: Any) -> Iterator[None]:
    """What holds while ``trainer.fit`` trains, undone after, however it ends.

    The model wrapped for data parallelism (``DistributedDataParallel``, once per fit), the
    optimizer's step counter (``labpkg.loop.update.AppliedSteps``), Ctrl-C held until the end
    of a mini-batch; at the end, a wait for the checkpoint file being finished. A
    KeyboardInterrupt ends ``fit`` cleanly: ``trainer.position`` says where it stopped if it
    landed between mini-batches, else None (no exact point to continue from).
    """
    trainer._fitting, trainer._landed = True, False
    trainer.train_model = distributed.wrap_model(trainer.model, trainer.device)
    try:
        with trainer._interrupt, trainer._applied_steps:
            yield
        trainer.checkpoint_queue.finish()  # the last file is on disk before fit returns
    except KeyboardInterrupt:
        trainer.state.interrupted = True
        trainer.position = trainer.position if trainer._landed else None  # mid-batch: unknown
        warnings.warn("training interrupted: returning the history so far", stacklevel=4)
        trainer.checkpoint_queue.finish()
    except BaseException as err:
        trainer.position = None  # somewhere inside a mini-batch or a hook
        trainer.checkpoint_queue.finish(err)
        raise
    finally:
        trainer._fitting, trainer.train_model = False, trainer.model
        trainer.checkpoint_queue.drop()  # asked for by a hook that did not finish
        trainer._input_checks.restore()

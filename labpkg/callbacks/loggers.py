"""``CSVLogger`` and ``TerminateOnNaN``."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from labpkg.callbacks.base import Callback

__all__ = ["CSVLogger", "TerminateOnNaN"]


class CSVLogger(Callback):
    """Append each epoch's logs to a CSV file, one row per epoch (Keras format).

    Columns are ``epoch`` (0-based, as Keras writes it) and the log keys, sorted and fixed at
    the first epoch; if that epoch had no ``val_`` keys, their ``val_`` twins are added so a
    later validation still has a column. A missing value is written as ``NA``.

    Args:
        filename: the CSV file.
        separator: column separator (default ``","``).
        append: keep an existing file and add rows (a header only if the file is empty).

    Example:
        >>> CSVLogger("training.csv").separator
        ','
    """

    rank_zero_only = True

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.separator, self.append = Path(filename), separator, append
        self.keys: list[str] | None = None
        self._file: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.filename.parent.mkdir(parents=True, exist_ok=True)
        has_rows = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        self._write_header = not has_rows
        self._file = self.filename.open("a" if self.append else "w", newline="")
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        writer = csv.writer(self._file, delimiter=self.separator)
        if self._write_header:
            writer.writerow(["epoch", *self.keys])
            self._write_header = False
        writer.writerow([epoch, *(_cell(logs.get(k)) for k in self.keys)])
        self._file.flush()  # a crash keeps every finished epoch

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _cell(value: Any) -> str:
    return "NA" if value is None else repr(float(value))


class TerminateOnNaN(Callback):
    """Stop (or raise) as soon as the running training loss is NaN or infinite.

    Args:
        raise_error: raise ``RuntimeError`` instead of stopping quietly (default False).

    Example:
        >>> TerminateOnNaN().raise_error
        False
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):  # float() is a host sync per batch
            return
        message = f"batch {batch + 1}: loss is {float(loss)}, terminating training"
        if self.raise_error:
            raise RuntimeError(message)
        print(message)
        self.trainer.state.stop_training = True

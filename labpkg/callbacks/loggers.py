"""Loggers: ``ProgbarLogger`` (progress bar or one line per epoch) and ``CSVLogger`` (a file)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from labpkg.callbacks.base import Callback

__all__ = ["CSVLogger", "ProgbarLogger", "format_logs"]


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


def format_logs(logs: dict) -> str:
    """``loss=0.4123 val_loss=0.5000`` from a logs dict (tensors are read here)."""
    return " ".join(f"{k}={float(v):.4f}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """Shows training progress; the Trainer adds it for ``verbose`` 1 or 2.

    Reading the running loss from the device is a host sync, so the bar refreshes its numbers
    at most every ``refresh`` seconds rather than after every batch.

    Args:
        verbose: 1 a bar per epoch (tqdm; a widget in notebooks), 2 one line per epoch.
        refresh: seconds between loss updates on the bar (default 0.5).
    """

    rank_zero_only = True

    def __init__(self, verbose: int = 1, refresh: float = 0.5) -> None:
        super().__init__()
        if verbose not in (1, 2):
            raise ValueError(f"verbose must be 1 or 2 for a progress logger, got {verbose}")
        self.verbose, self.refresh = verbose, refresh
        self._bar = None
        self._last = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.verbose != 1:
            return
        from tqdm.auto import tqdm  # imported on first use: `import labpkg` stays light

        total = self.trainer.state.batches_per_epoch
        desc = f"epoch {epoch + 1}/{self.trainer.state.epochs}"
        self._bar = tqdm(total=total, desc=desc, unit="batch", leave=True, file=sys.stdout)
        self._last = 0.0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        now = time.monotonic()
        if logs and now - self._last >= self.refresh:
            self._last = now
            self._bar.set_postfix_str(format_logs(logs), refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs or {}), refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            print(f"epoch {epoch + 1}/{self.trainer.state.epochs} {format_logs(logs or {})}")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._bar is not None:  # interrupted mid-epoch
            self._bar.close()
            self._bar = None

"""Loggers: ``ProgbarLogger`` (progress bar or one line per epoch) and ``CSVLogger`` (a file)."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from labpkg.callbacks.base import Callback
from labpkg.core.checkpoint import check_writable

__all__ = ["CSVLogger", "ProgbarLogger", "format_logs"]


class CSVLogger(Callback):
    """Append each epoch's logs to a CSV file, one row per epoch (Keras format).

    Columns are ``epoch`` (0-based, as Keras writes it) and the log keys, sorted and fixed at
    the first epoch; if that epoch had no ``val_`` keys, their ``val_`` twins are added so a
    later validation still has a column. A missing value is written as ``NA``.

    The file is opened at the first epoch's end, so a run that fails before (a bad
    ``resume_from``) leaves it untouched; whether it can be written is checked before training
    starts. A resumed run continues the same file: it keeps the rows up to the checkpoint,
    drops any rows of epochs after it (they are trained again), and appends, whatever
    ``append`` says.

    Args:
        filename: the CSV file.
        separator: column separator (default ``","``).
        append: keep an existing file and add rows (a header only if the file is empty; a file
            whose header has other columns is refused).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "training.csv")
        >>> log = CSVLogger(path)  # fit(..., callbacks=[log]) calls these hooks
        >>> log.on_train_begin()
        >>> log.on_epoch_end(0, {"loss": 0.75, "val_loss": 0.5})
        >>> log.on_train_end()
        >>> print(open(path).read().strip())
        epoch,loss,val_loss
        0,0.75,0.5
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    rank_zero_only = True

    def __init__(self, filename: str, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.separator, self.append = Path(filename), separator, append
        self.keys: list[str] | None = None
        self._file: Any = None
        self._rows = 0  # data rows in the file after the last write
        self._resume_rows: int | None = None

    def default_key(self) -> str:
        return f"CSVLogger({self.filename})"

    def on_train_begin(self, logs: dict | None = None) -> None:
        check_writable(self.filename, "CSVLogger")  # now, not after the first epoch
        self.keys, self._file, self._rows, self._resume_rows = None, None, 0, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self._file is None:
            self._open()
        writer = csv.writer(self._file, delimiter=self.separator)
        writer.writerow([epoch, *(_cell(logs.get(k)) for k in self.keys)])
        self._file.flush()  # a crash keeps every finished epoch
        self._rows += 1

    def _open(self) -> None:
        header = ["epoch", *self.keys]
        lines = self._existing_lines()
        if self._resume_rows is not None:  # resumed: the rows up to the checkpoint stay
            lines = lines[: 1 + self._resume_rows]
            self.filename.write_text("".join(lines))
        elif self.append and len(lines) > 0:
            found = next(csv.reader(lines[:1], delimiter=self.separator))
            if found != header:
                raise ValueError(
                    f"CSVLogger(append=True): {self.filename} has columns {found}, these logs "
                    f"have {header}; use another file, or append=False to start it afresh"
                )
        else:
            lines = []
        self._rows = max(len(lines) - 1, 0)
        self._file = self.filename.open("a" if lines else "w", newline="")
        if not lines:
            csv.writer(self._file, delimiter=self.separator).writerow(header)

    def _existing_lines(self) -> list[str]:
        if not self.filename.exists():
            return []
        return self.filename.read_text().splitlines(keepends=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self._rows, "keys": self.keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume_rows, self._rows, self.keys = state["rows"], state["rows"], state["keys"]


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

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    rank_zero_only = True

    def __init__(self, verbose: int = 1, refresh: float = 0.5) -> None:
        super().__init__()
        if verbose not in (1, 2):
            raise ValueError(f"verbose must be 1 or 2 for a progress logger, got {verbose}")
        self.verbose, self.refresh = verbose, refresh
        self._bar = None
        self._last = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._open_bar(epoch, done=0)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._bar is None:  # an epoch resumed mid-way had no on_epoch_begin here
            self._open_bar(self.trainer.state.epoch, done=batch)

    def _open_bar(self, epoch: int, done: int) -> None:
        if self.verbose != 1:
            return
        from tqdm.auto import tqdm  # imported on first use: `import labpkg` stays light

        total = self.trainer.state.batches_per_epoch
        desc = f"epoch {epoch + 1}/{self.trainer.state.epochs}"
        self._bar = tqdm(
            total=total, initial=done, desc=desc, unit="batch", leave=True, file=sys.stdout
        )
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

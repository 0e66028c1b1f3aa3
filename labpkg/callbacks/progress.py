"""``ProgbarLogger``: a progress bar per epoch (verbose=1) or one line per epoch (verbose=2)."""

from __future__ import annotations

import sys
import time

from labpkg.callbacks.base import Callback

__all__ = ["ProgbarLogger", "format_logs"]


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

        total = self.trainer.state.epoch_length
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

"""``ModelCheckpoint``: save the model during training (Keras semantics)."""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Any

from labpkg.callbacks.base import Callback
from labpkg.callbacks.monitor import (
    DivergenceCheck,
    MissingKeyWarner,
    MonitorMode,
    is_improvement,
    resolve_mode,
)
from labpkg.core import checkpoint
from labpkg.core.checks import as_int
from labpkg.nn.metrics import declared_log_keys

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(MonitorMode, Callback):
    """Save a checkpoint every epoch (or every ``save_freq`` updates), or only the best one.

    Args:
        filepath: a path, optionally a template such as ``"ckpt/{epoch:02d}-{val_loss:.2f}.pt"``
            (``epoch`` is 1-based; any log key can appear, also in folder names, as in
            ``"runs/{epoch}/ckpt.pt"``; a key the logs will not hold or a format that cannot
            format a number raises before training starts). Two ModelCheckpoints may not
            share a filepath: each would overwrite the other's file.
        monitor: log key that decides "best" (default ``"val_loss"``).
        verbose: 1 prints a line per save.
        save_best_only: save only on a strict improvement of ``monitor`` (a tie keeps the
            earlier file; a NaN never saves; a missing key warns and saves anyway). An epoch
            that was not validated (``fit(validation_freq=k)``) is skipped for a ``val_``
            monitor: it has no value to compare. (tf.keras 2 skipped every epoch missing the
            key; Keras 3 warns and saves, which here would make the "best" file hold an
            epoch nobody scored; Lightning saves at validation ends only.)
        save_weights_only: save ``model.state_dict()`` alone; otherwise the full training state
            (model, optimizer, scaler, counters, callbacks, RNG) so ``fit(resume_from=...)``
            can continue.
        mode: ``"auto"`` (as ``EarlyStopping``'s), ``"min"`` or ``"max"``.
        save_freq: ``"epoch"`` or an int: save after every that many optimizer updates
            (``global_step``, counted across epochs), at the end of the mini-batch that made
            the update; with ``accumulate_grad_batches=k`` that is every k mini-batches, and
            a save inside an accumulation group never happens. A run resumed from such a
            mid-epoch checkpoint continues with the next mini-batch of the same epoch.
        initial_value_threshold: a first ``best`` to beat (``save_best_only`` only).

    Example:
        >>> import os, tempfile, torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from labpkg.loop.trainer import Trainer
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)  # a "segmentation model" of one layer
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.5), "cross_entropy")
        >>> pairs = TensorDataset(torch.rand(8, 3, 4, 4), torch.randint(0, 2, (8, 4, 4)))
        >>> data = DataLoader(pairs, batch_size=4)
        >>> folder = tempfile.mkdtemp()
        >>> best = ModelCheckpoint(os.path.join(folder, "best.pt"), save_best_only=True)
        >>> _ = trainer.fit(data, epochs=3, validation_data=data, callbacks=[best], verbose=0)
        >>> os.listdir(folder), best.best == min(trainer.history.history["val_loss"])
        (['best.pt'], True)
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    rank_zero_only = True

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        if save_freq != "epoch":
            save_freq = as_int(save_freq, "save_freq (or 'epoch')", 1)
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = resolve_mode(monitor, mode)
        self.save_freq, self.initial_value_threshold = save_freq, initial_value_threshold
        self.best: float | None = initial_value_threshold
        self.best_path: str | None = None
        self._due = False  # an update of a multiple of save_freq just ended
        self._warn_missing = MissingKeyWarner("ModelCheckpoint", monitor)
        self._divergence = DivergenceCheck("ModelCheckpoint")

    def default_key(self) -> str:
        return f"ModelCheckpoint({self.filepath})"

    def on_train_begin(self, logs: dict | None = None) -> None:
        # fail now, not after the first epoch; a folder named by a template is made when saved
        checkpoint.check_writable(_fixed_part(self.filepath) / "checkpoint.pt")
        self._check_template()
        self._check_own_file()

    def on_update_end(self, step: int, logs: dict | None = None) -> None:
        self._due = self.save_freq != "epoch" and step % self.save_freq == 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._due:  # saved at the batch's end: its logs and every callback's hook done
            self._due = False
            self._maybe_save(self.trainer.state.epoch, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # _due here: the update that closed a stream which ran out before batches_per_epoch
        # came after its last mini-batch; saved now, at the epoch's end, not inside a group
        if self.save_freq == "epoch" or self._due:
            self._due = False
            self._maybe_save(epoch, logs or {})

    def _maybe_save(self, epoch: int, logs: dict) -> None:
        logs = {k: float(v) for k, v in logs.items()}  # batch logs may hold device tensors
        if self.save_best_only:
            if self._not_validated(logs):
                return  # validation_freq skipped this epoch: there is nothing to compare
            if self.monitor not in logs:
                self._warn_missing(logs)
            else:
                current = logs[self.monitor]
                if self._divergence.diverged(self.trainer, epoch):
                    return  # NaN weights can score "well" (all background): never best
                if not is_improvement(current, self.best, self.mode):
                    return
                self.best = current
        path = self.filepath.format(epoch=epoch + 1, **logs)
        # written by the Trainer's loop once every callback has run this hook (CheckpointQueue)
        self.trainer.checkpoint_queue.request(
            path,
            weights_only=self.save_weights_only,
            extra={"best": self.best},
            on_saved=lambda: self._saved(path, epoch, logs),
        )

    def _saved(self, path: str, epoch: int, logs: dict) -> None:
        self.best_path = path
        if self.verbose:
            value = logs.get(self.monitor, math.nan)
            print(f"epoch {epoch + 1}: saved {path} ({self.monitor}={value:.4f})")

    def _not_validated(self, logs: dict) -> bool:
        """An epoch-end ``val_`` monitor, validation data, and no ``val_`` key this epoch."""
        per_epoch = self.save_freq == "epoch" and self.monitor.startswith("val_")
        validates = getattr(self.trainer, "val_loader", None) is not None
        return per_epoch and validates and not any(k.startswith("val_") for k in logs)

    def _check_template(self) -> None:
        """Fail before training if the file name asks for a log key that will never exist,
        or formats a value in a way that fails (``{epoch:.2q}``, ``{loss:d}``, ``{}``)."""
        fields = _template_fields(self.filepath)
        known = _known_log_keys(self.trainer, per_batch=self.save_freq != "epoch")
        named = {f for f in fields if f.isidentifier()}  # "{}" and "{0}": the format check
        unknown = sorted(named - {"epoch"} - (known or set()))
        if unknown and known is not None:
            raise KeyError(
                f"ModelCheckpoint filepath {self.filepath!r} uses {unknown}, which the logs "
                f"will not hold; they hold epoch and {sorted(known)}"
            )
        try:  # as a save would, with a number for every log value
            self.filepath.format(**{**{f: 0.5 for f in fields}, "epoch": 1})
        except (ValueError, IndexError, KeyError) as err:
            raise ValueError(
                f"ModelCheckpoint filepath {self.filepath!r} cannot be formatted ({err}): "
                "name each value, e.g. {epoch:02d} (an int) or {val_loss:.3f} (a float)"
            ) from err

    def _check_own_file(self) -> None:
        """Two ModelCheckpoints writing one file would overwrite each other's saves."""
        for other in self.trainer.callbacks:
            if other is self:
                return  # only those listed before this one: the pair is reported once
            if isinstance(other, ModelCheckpoint) and other.filepath == self.filepath:
                raise ValueError(
                    f"two ModelCheckpoints write {self.filepath!r}: each would overwrite the "
                    "other's file (a save_best_only file would end up holding any epoch). "
                    "Give each its own filepath, e.g. 'best.pt' and 'last.pt'"
                )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_path": self.best_path}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_path = state["best"], state["best_path"]


def _template_fields(template: str) -> set[str]:
    """The log keys a filepath template names (``{val_loss:.2f}`` names ``val_loss``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:  # a lone "{" or "}"
        raise ValueError(f"ModelCheckpoint filepath {template!r}: {err}; write {{{{ for a "
                         "literal brace") from err  # fmt: skip
    return {f.split(".")[0].split("[")[0] for _, f, _, _ in parsed if f is not None}


def _fixed_part(template: str) -> Path:
    """The folders of ``template`` before the first one that a value names."""
    fixed = []
    for part in Path(template).parent.parts:
        if "{" in part:
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _known_log_keys(trainer: Any, per_batch: bool) -> set[str] | None:
    """The keys the logs will hold, as the metrics (``log_keys()``) and callbacks
    (``log_keys``) declare them; None if one of them does not, and so could add any key."""
    if per_batch:
        return {"loss"}  # mini-batch logs hold the running loss
    keys = {"loss"}
    for metric in trainer.metrics:
        declared = declared_log_keys(metric)
        if declared is None:
            return None
        keys |= set(declared)
    if getattr(trainer, "val_loader", None) is not None:
        keys |= {f"val_{k}" for k in keys}  # validation logs the loss and the metrics again
    for callback in trainer.callbacks:
        declared = getattr(callback, "log_keys", None)
        if declared is None:
            return None
        keys |= set(declared)
    return keys

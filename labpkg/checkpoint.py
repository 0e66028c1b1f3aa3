"""Saving and loading training state safely.

- **Atomic writes.** A checkpoint is written to a temporary file in the same folder and moved
  over the old one with ``os.replace``, so a crash mid-write never leaves a half-written file
  where a good one was.
- **Safe loads.** ``torch.load(..., weights_only=True)`` refuses files that would run pickled
  code; everything we save is tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "check_writable",
    "rng_state",
    "set_rng_state",
    "load_model_state",
    "trainer_state",
    "restore_trainer",
]


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` to ``path`` atomically (temporary file + ``os.replace``).

    Args:
        obj: a dict of tensors and plain Python values (no custom classes).
        path: the destination file; its folder is created if needed.

    Returns:
        The path written.

    Example:
        >>> import tempfile, os
        >>> p = save_checkpoint({"step": 3}, os.path.join(tempfile.mkdtemp(), "c.pt"))
        >>> load_checkpoint(p)["step"]
        3
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint onto the CPU with ``weights_only=True``.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file holds pickled Python objects (refused: loading them could run
            arbitrary code) or is not a checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
            raise ValueError(
                f"{path} is not a readable checkpoint (not a torch.save file)"
            ) from err
        raise ValueError(
            f"refused to load {path}: it holds Python objects other than tensors and plain "
            "values, and unpickling them could run code. Save state_dict()s and numbers only."
        ) from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path} is not a readable checkpoint ({err})") from err


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, not after an hour of training, if ``path``'s folder cannot be written."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"cannot write checkpoints to {folder}: {err.strerror}") from err


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state)`` with an error that names the keys that differ."""
    own = set(model.state_dict())
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise ValueError(
            "checkpoint is from a different model: "
            f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    shapes = [k for k, v in model.state_dict().items() if v.shape != state[k].shape]
    if shapes:
        raise ValueError(f"checkpoint is from a different model: shapes differ for {shapes[:5]}")
    model.load_state_dict(state)


def rng_state() -> dict[str, Any]:
    """Every random generator's state, as tensors and plain values (loadable safely)."""
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global RNG is what we restore)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _to_lists(random.getstate()),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def trainer_state(trainer: Any) -> dict[str, Any]:
    """A Trainer's full state after the current epoch, as tensors and plain values."""
    generator = getattr(trainer.train_loader, "generator", None)
    state = trainer.state
    return {
        "epoch": state.epoch,
        "global_step": state.global_step,
        "batches_seen": state.batches_seen,
        "samples_seen": state.samples_seen,
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "callbacks": {_key(i, cb): cb.state_dict() for i, cb in enumerate(trainer.callbacks)},
        "rng": rng_state(),
        "loader_rng": generator.get_state() if generator is not None else None,
    }


def restore_trainer(trainer: Any, path: str | os.PathLike) -> int:
    """Load ``path`` into ``trainer``; returns the epoch to continue from (0-based)."""
    saved = load_checkpoint(path)
    load_model_state(trainer.model, saved["model"])
    trainer.optimizer.load_state_dict(saved["optimizer"])
    trainer.scaler.load_state_dict(saved["scaler"])
    for key in ("global_step", "batches_seen", "samples_seen"):
        setattr(trainer.state, key, saved[key])
    callbacks = saved.get("callbacks", {})
    for i, cb in enumerate(trainer.callbacks):
        if _key(i, cb) in callbacks:  # matched by position and class name
            cb.load_state_dict(callbacks[_key(i, cb)])
    set_rng_state(saved["rng"])
    generator = getattr(trainer.train_loader, "generator", None)
    if generator is not None and saved.get("loader_rng") is not None:
        generator.set_state(saved["loader_rng"])
    return saved["epoch"] + 1


def _key(index: int, callback: Any) -> str:
    return f"{index}:{type(callback).__name__}"

"""Callbacks: code that runs at fixed points of ``Trainer.fit`` (Keras hook names)."""

from labpkg.callbacks.base import Callback, CallbackList
from labpkg.callbacks.checkpointing import ModelCheckpoint
from labpkg.callbacks.history import History
from labpkg.callbacks.lr import LRSchedulerCallback
from labpkg.callbacks.monitor import is_improvement, resolve_mode
from labpkg.callbacks.progress import ProgbarLogger

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "LRSchedulerCallback",
    "ModelCheckpoint",
    "ProgbarLogger",
    "is_improvement",
    "resolve_mode",
]

"""Callbacks: code that runs at fixed points of ``Trainer.fit`` (Keras hook names).

One module per family: ``base`` (the hooks), ``history``, ``loggers`` (progress bar, CSV),
``live`` (a plot that redraws), ``gradients`` (the gradient norm), ``periodic`` (evaluation
every k updates), ``stopping`` (early stopping, NaN), ``checkpointing``, ``lr`` (every
learning-rate callback), ``monitor`` (what "better" means).

The Keras lines ``EarlyStopping(monitor='val_loss', patience=10)`` and
``ModelCheckpoint('best_model.h5', save_best_only=True)`` read the same here (with a ``.pt``
file).
"""

from labpkg.callbacks.base import Callback, CallbackList
from labpkg.callbacks.checkpointing import ModelCheckpoint
from labpkg.callbacks.gradients import GradientNorm
from labpkg.callbacks.history import BatchHistory, History, HookRecorder
from labpkg.callbacks.live import LivePlot
from labpkg.callbacks.loggers import CSVLogger, ProgbarLogger
from labpkg.callbacks.lr import LearningRateScheduler, LRSchedulerCallback, ReduceLROnPlateau
from labpkg.callbacks.monitor import is_improvement, resolve_mode
from labpkg.callbacks.periodic import EvaluateEvery
from labpkg.callbacks.stopping import EarlyStopping, TerminateOnNaN

__all__ = [
    "BatchHistory",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "EvaluateEvery",
    "GradientNorm",
    "History",
    "HookRecorder",
    "LRSchedulerCallback",
    "LearningRateScheduler",
    "LivePlot",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "is_improvement",
    "resolve_mode",
]

"""labpkg: the package behind *Training Loop Lab*.

One import line gives a chapter everything it needs::

    import labpkg
    device = labpkg.pick_device()

``labpkg.viz`` (matplotlib) and ``labpkg.widgets`` (ipywidgets) load on first use, so
``import labpkg`` stays cheap and works in a plain terminal.
"""

from __future__ import annotations

import importlib
from typing import Any

from labpkg.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateScheduler,
    LivePlot,
    LRSchedulerCallback,
    ModelCheckpoint,
    ProgbarLogger,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from labpkg.checkpoint import load_checkpoint, save_checkpoint
from labpkg.counting import (
    effective_batch_size,
    iterations_per_epoch,
    samples_per_rank,
    total_iterations,
    updates_per_epoch,
)
from labpkg.data import (
    CLASS_NAMES,
    ShapesConfig,
    SyntheticShapes,
    make_loaders,
    make_shapes,
    train_val_split,
)
from labpkg.devices import amp_dtype_for, describe_device, pick_device, time_call
from labpkg.losses import (
    CombinedLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    JaccardLoss,
    get_loss,
)
from labpkg.metrics import DiceCoefficient, MeanIoU, PixelAccuracy, SegmentationMetrics
from labpkg.models import UNet, UNetConfig, count_parameters
from labpkg.optim import get_optimizer
from labpkg.trainer import Trainer, TrainState

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "CLASS_NAMES",
    "CSVLogger",
    "Callback",
    "CombinedLoss",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceCoefficient",
    "DiceLoss",
    "EarlyStopping",
    "History",
    "JaccardLoss",
    "LRSchedulerCallback",
    "LearningRateScheduler",
    "LivePlot",
    "MeanIoU",
    "ModelCheckpoint",
    "PixelAccuracy",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "SegmentationMetrics",
    "ShapesConfig",
    "SyntheticShapes",
    "TerminateOnNaN",
    "TrainState",
    "Trainer",
    "UNet",
    "UNetConfig",
    "amp_dtype_for",
    "count_parameters",
    "describe_device",
    "effective_batch_size",
    "get_loss",
    "get_optimizer",
    "iterations_per_epoch",
    "load_checkpoint",
    "make_loaders",
    "make_shapes",
    "pick_device",
    "samples_per_rank",
    "save_checkpoint",
    "time_call",
    "total_iterations",
    "train_val_split",
    "updates_per_epoch",
    "viz",
    "widgets",
    "exercises",
    "profiling",
]

_LAZY_MODULES = {"viz", "widgets", "exercises", "profiling"}


def __getattr__(name: str) -> Any:
    # PEP 562: heavy optional modules are imported only when a chapter touches them.
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"labpkg.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'labpkg' has no attribute {name!r}")

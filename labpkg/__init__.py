"""labpkg: the package behind *Training Loop Lab*.

One import line gives a chapter everything it needs::

    import labpkg
    device = labpkg.pick_device()

``labpkg.viz`` (matplotlib), ``labpkg.widgets`` (IPython), ``labpkg.exercises``,
``labpkg.profiling``, ``labpkg.timing`` and ``labpkg.valley`` load on first use, so
``import labpkg`` stays cheap and works in a plain terminal.
"""

from __future__ import annotations

import importlib
from typing import Any

from labpkg.book.notebook import glue, show_image, show_source
from labpkg.book.versions import check_version
from labpkg.callbacks import (
    BatchHistory,
    Callback,
    CSVLogger,
    EarlyStopping,
    EvaluateEvery,
    GradientNorm,
    History,
    HookRecorder,
    LearningRateScheduler,
    LivePlot,
    LRSchedulerCallback,
    ModelCheckpoint,
    ProgbarLogger,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from labpkg.core import devices as devices  # chapters: labpkg.devices.*
from labpkg.core.checkpoint import load_checkpoint, save_checkpoint
from labpkg.core.counting import (
    batches_per_epoch,
    effective_batch_size,
    samples_per_rank,
    total_updates,
    updates_per_epoch,
)
from labpkg.core.devices import amp_dtype_for, amp_settings, describe_device, pick_device, time_call
from labpkg.core.distributed import init_from_env
from labpkg.core.reproducibility import seed_everything
from labpkg.data import pets as pets  # chapters: labpkg.pets.*
from labpkg.data.folder import RandomFlipCrop, SegmentationFolder, jpeg_round_trip, save_pairs
from labpkg.data.pets import OxfordPetSegmentation
from labpkg.data.pipeline import Augmented, WorkerDraws
from labpkg.data.synthetic import (
    CLASS_NAMES,
    ShapesConfig,
    SyntheticShapes,
    Transformed,
    make_loaders,
    make_shapes,
    train_val_split,
)
from labpkg.loop.lr_finder import LRFinderResult, lr_find
from labpkg.loop.state import TrainState
from labpkg.loop.trainer import Trainer
from labpkg.nn import optim as optim  # chapters: labpkg.optim.*
from labpkg.nn.architecture import input_reach, layer_shapes, receptive_field
from labpkg.nn.losses import (
    CombinedLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    JaccardLoss,
    get_loss,
)
from labpkg.nn.metrics import (
    DiceCoefficient,
    MeanIoU,
    Metric,
    PixelAccuracy,
    SegmentationMetrics,
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    pixel_accuracy_from_confusion,
)
from labpkg.nn.models import UNet, UNetConfig, count_parameters
from labpkg.nn.optim import get_optimizer, weight_decay_groups
from labpkg.recipes import Recipe, train_recipe

__version__ = "0.1.0"

# What a chapter uses, so ``import labpkg`` is its one import line. The figure, widget,
# exercise, profiling and timing modules are attributes that load on first use (matplotlib,
# IPython), and stay out of ``from labpkg import *``.
__all__ = [
    "__version__",
    "Augmented",
    "BatchHistory",
    "CLASS_NAMES",
    "CSVLogger",
    "Callback",
    "CombinedLoss",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceCoefficient",
    "DiceLoss",
    "EarlyStopping",
    "EvaluateEvery",
    "GradientNorm",
    "History",
    "HookRecorder",
    "JaccardLoss",
    "LRFinderResult",
    "LRSchedulerCallback",
    "LearningRateScheduler",
    "LivePlot",
    "MeanIoU",
    "Metric",
    "ModelCheckpoint",
    "OxfordPetSegmentation",
    "PixelAccuracy",
    "ProgbarLogger",
    "Recipe",
    "RandomFlipCrop",
    "ReduceLROnPlateau",
    "SegmentationFolder",
    "SegmentationMetrics",
    "ShapesConfig",
    "SyntheticShapes",
    "TerminateOnNaN",
    "TrainState",
    "Trainer",
    "Transformed",
    "UNet",
    "UNetConfig",
    "WorkerDraws",
    "amp_dtype_for",
    "amp_settings",
    "batches_per_epoch",
    "check_version",
    "confusion_matrix",
    "count_parameters",
    "layer_shapes",
    "receptive_field",
    "input_reach",
    "seed_everything",
    "describe_device",
    "dice_from_confusion",
    "effective_batch_size",
    "get_loss",
    "get_optimizer",
    "weight_decay_groups",
    "init_from_env",
    "jpeg_round_trip",
    "iou_from_confusion",
    "load_checkpoint",
    "lr_find",
    "make_loaders",
    "make_shapes",
    "pick_device",
    "pixel_accuracy_from_confusion",
    "samples_per_rank",
    "save_checkpoint",
    "save_pairs",
    "show_image",
    "show_source",
    "glue",
    "time_call",
    "total_updates",
    "train_recipe",
    "train_val_split",
    "updates_per_epoch",
]

# name -> module; each is imported on first use (matplotlib, IPython).
_LAZY_MODULES = {
    "viz": "labpkg.figures.viz",
    "widgets": "labpkg.figures.widgets",
    "exercises": "labpkg.book.exercises",
    "profiling": "labpkg.core.profiling",
    "timing": "labpkg.core.timing",
    "valley": "labpkg.figures.valley",
}


def __getattr__(name: str) -> Any:
    # PEP 562: heavy optional modules are imported only when a chapter touches them.
    if name in _LAZY_MODULES:
        module = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'labpkg' has no attribute {name!r}")

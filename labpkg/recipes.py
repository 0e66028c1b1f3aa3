"""A tested default recipe: what to train, how, and for how long, on a laptop CPU or a GPU.

Measured on 2 CPU cores (see ``benchmarks/recipe.py``): validation mean IoU >= 0.90 on the
synthetic shapes within 60 s of training for each of 5 seeds. The ingredients, and why:

- **fresh samples every epoch**: a fixed small training set is memorised (over-fitting);
- **batch 8**: more updates per second of CPU time than large batches, each still useful;
- **AdamW with a one-cycle schedule**: warm up, then anneal, over a known number of updates;
  ``OneCycleLR`` also moves Adam's β₁ the other way (0.95 → 0.85 → 0.95, PyTorch's defaults);
- **no weight decay on biases and norm layers** (``weight_decay_groups``, fastai's default);
- **bf16 autocast + channels_last**: about twice as fast per step on a recent CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from labpkg.callbacks import LRSchedulerCallback
from labpkg.data import ShapesConfig, SyntheticShapes, make_loaders
from labpkg.metrics import SegmentationMetrics
from labpkg.models import UNet, UNetConfig
from labpkg.optim import weight_decay_groups
from labpkg.trainer import Trainer

__all__ = ["Recipe", "RecipeRun", "build_recipe", "train_recipe"]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run, with the defaults we measured.

    Example:
        >>> quick = Recipe(epochs=2, samples_per_epoch=64)  # frozen: change by making a new one
        >>> quick.batch_size, quick.samples_per_epoch // quick.batch_size  # updates per epoch
        (8, 8)
    """

    difficulty: str = "medium"
    image_size: int = 64
    samples_per_epoch: int = 1024
    val_samples: int = 512
    base_width: int = 16
    batch_size: int = 8
    optimizer: str = "adamw"
    peak_lr: float = 6e-3
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = False  # fastai: wd_bn_bias=False
    epochs: int = 10
    amp: bool | str = "auto"
    channels_last: bool = True


@dataclass
class RecipeRun:
    """A recipe made concrete: the trainer, its loaders and its learning-rate schedule."""

    trainer: Trainer
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    schedule: LRSchedulerCallback


def build_recipe(
    recipe: Recipe | None = None, seed: int = 0, device: str | torch.device | None = None
) -> RecipeRun:
    """Everything ``train_recipe`` trains with, built but not trained (e.g. for ``lr_find``).

    The validation set is fixed and disjoint from the training seeds. Weight decay applies to
    the convolution weights only (``weight_decay_groups``) unless ``decay_norm_and_bias``.

    Example:
        >>> run = build_recipe(Recipe(samples_per_epoch=16, val_samples=8, image_size=32))
        >>> len(run.train_loader), type(run.trainer.optimizer).__name__
        (2, 'AdamW')
        >>> [g["weight_decay"] for g in run.trainer.optimizer.param_groups]
        [0.0001, 0.0]
    """
    r = recipe or Recipe()
    torch.manual_seed(seed)
    shapes = ShapesConfig.preset(r.difficulty, size=r.image_size)
    train = SyntheticShapes(r.samples_per_epoch, shapes, seed=seed, fresh_each_epoch=True)
    val = SyntheticShapes(r.val_samples, shapes, seed=10_000 + seed)
    train_loader, val_loader = make_loaders(train, val, r.batch_size, device, val_batch_size=64)
    model = UNet(UNetConfig(num_classes=shapes.num_classes, base_width=r.base_width))
    optim_cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[r.optimizer]
    if r.decay_norm_and_bias:
        params = model.parameters()
    else:
        params = weight_decay_groups(model, r.weight_decay)
    optimizer = optim_cls(params, lr=r.peak_lr, weight_decay=r.weight_decay)
    # OneCycleLR's defaults: the lr climbs from peak / 25 for 30 % of the updates, then falls
    # to peak / 25e4; β₁ (Adam's momentum) goes 0.95 -> 0.85 -> 0.95, against the lr
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=r.peak_lr, total_steps=r.epochs * len(train_loader)
    )
    trainer = Trainer(
        model,
        optimizer,
        torch.nn.CrossEntropyLoss(),
        metrics=[SegmentationMetrics(shapes.num_classes)],
        device=device,
        amp=r.amp,
        channels_last=r.channels_last,
    )
    return RecipeRun(trainer, train_loader, val_loader, LRSchedulerCallback(schedule, "step"))


def train_recipe(
    recipe: Recipe | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    callbacks: list | None = None,
    verbose: int = 0,
):
    """Train a U-Net with ``recipe`` and return ``(trainer, history, seconds)``.

    ``seconds`` is the wall time of ``fit`` (data generation and model building excluded).
    """
    r = recipe or Recipe()
    run = build_recipe(r, seed, device)
    cbs = [run.schedule, *(callbacks or [])]
    start = time.perf_counter()
    history = run.trainer.fit(
        run.train_loader, r.epochs, run.val_loader, callbacks=cbs, verbose=verbose
    )
    return run.trainer, history, time.perf_counter() - start

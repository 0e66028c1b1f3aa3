"""A tested default recipe: what to train, how, and for how long, on a laptop CPU or a GPU.

Measured on 2 CPU cores (see ``benchmarks/recipe.py``): validation mean IoU >= 0.90 on the
synthetic shapes within 60 s of training for each of 5 seeds. The ingredients, and why:

- **fresh samples every epoch**: a fixed small training set is memorised (over-fitting);
- **batch 8**: more updates per second of CPU time than large batches, each still useful;
- **AdamW with a one-cycle schedule**: warm up, then anneal, over a known number of updates;
  ``OneCycleLR`` also moves Adam's β₁ the other way (0.95 → 0.85 → 0.95, PyTorch's defaults);
- **no weight decay on biases and norm layers** (``weight_decay_groups``, fastai's default);
- **bf16 autocast + channels_last**: about twice as fast per step on a recent CPU.

``Recipe.speedrun()`` is the recipe measured to reach the same target (validation mean IoU
>= 0.90, the same validation images at 64 px) soonest on its slowest seed: each of its
changes to ``Recipe()`` was tried alone and kept only if every seed still reached the target
and the slowest seed reached it sooner (before test-time flips, a change was kept when
every seed reached the target and the median fell). ``speedrun_records()`` reads the measurements
(``benchmarks/recipe.py --speedrun`` writes them).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from importlib import resources

import torch
from torch import nn

from labpkg.callbacks import LRSchedulerCallback
from labpkg.core.counting import updates_from_batches
from labpkg.data.synthetic import ShapesConfig, SyntheticShapes, make_loaders, make_shapes
from labpkg.loop.trainer import Trainer
from labpkg.nn.losses import DiceCELoss
from labpkg.nn.metrics import SegmentationMetrics
from labpkg.nn.models import UNet, UNetConfig
from labpkg.nn.optim import OPTIMIZERS, get_optimizer, weight_decay_groups

__all__ = [
    "Recipe",
    "RecipeRun",
    "ScheduledShapes",
    "FlipAverage",
    "build_recipe",
    "train_recipe",
    "speedrun_records",
]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a training run, with the defaults we measured.

    The fields after ``channels_last`` are the speedrun's knobs; their defaults leave the
    recipe as it was (``Recipe.speedrun()`` sets them).

    Args:
        depth: U-Net levels (``UNetConfig.depth``, default 4).
        train_sizes: a resolution schedule: the training images' size at each epoch, the last
            one repeated (default ``()``: ``image_size`` throughout). Validation stays at
            ``image_size``.
        fresh_data: draw new training images every epoch (default True); False keeps the
            same scenes, redrawn only when ``train_sizes`` changes their size.
        loss: ``"cross_entropy"`` (default) or ``"dice_ce"`` (``labpkg.DiceCELoss``).
        label_smoothing: cross-entropy's label smoothing (default 0.0).
        warmup_share: share of the updates spent raising the learning rate (one-cycle's
            ``pct_start``, default 0.3).
        tta_flips: validate on the mean of the scores of each image and its mirror image
            (test-time augmentation; default False).
        validation_freq: validate after every this many epochs (default 1), or after each
            1-based epoch of a tuple (``fit``'s ``validation_freq``).
        accumulate_grad_batches: mini-batches whose gradients add up to one update (default 1).
        drop_last: drop each epoch's last, smaller training mini-batch (default False).
        schedule: ``"one_cycle"`` (default) or ``"constant"``: ``peak_lr`` throughout, as
            the command line trains.

    Example:
        >>> quick = Recipe(epochs=2, samples_per_epoch=64)  # frozen: change by making a new one
        >>> quick.batch_size, quick.samples_per_epoch // quick.batch_size  # updates per epoch
        (8, 8)
        >>> Recipe(train_sizes=(32, 64)).size_at(0), Recipe(train_sizes=(32, 64)).size_at(5)
        (32, 64)
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
    depth: int = 4
    train_sizes: tuple[int, ...] = ()
    fresh_data: bool = True
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    warmup_share: float = 0.3
    tta_flips: bool = False
    validation_freq: int | tuple[int, ...] = 1
    accumulate_grad_batches: int = 1
    drop_last: bool = False
    schedule: str = "one_cycle"

    def __post_init__(self) -> None:
        # a list from JSON or the command line becomes a tuple: the recipe stays hashable
        object.__setattr__(self, "train_sizes", tuple(int(s) for s in self.train_sizes))
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}")
        if self.schedule not in ("one_cycle", "constant"):
            raise ValueError(f"schedule must be 'one_cycle' or 'constant', got {self.schedule!r}")

    def size_at(self, epoch: int) -> int:
        """The training images' size at ``epoch`` (0-based), from ``train_sizes``."""
        if not self.train_sizes:
            return self.image_size
        return self.train_sizes[min(epoch, len(self.train_sizes) - 1)]

    @classmethod
    def speedrun(cls) -> Recipe:
        """The recipe measured to reach validation mean IoU >= 0.90 soonest on its slowest seed,
        on 2 CPU cores.

        Each change to ``Recipe()`` was tried alone and kept only where every seed reached
        the target and the slowest seed reached it sooner (before test-time flips, when every
        seed reached it and the median fell); ``speedrun_records()`` holds every try.

        Example:
            >>> records = [row for row in speedrun_records()["rows"] if row["kind"] == "record"]
            >>> Recipe.speedrun() == Recipe(**records[-1]["recipe"])
            True
        """
        return replace(cls(), **SPEEDRUN_CHANGES)


#: What ``Recipe.speedrun()`` changes in ``Recipe()``: the record table's kept rows.
SPEEDRUN_CHANGES = {
    "epochs": 6,
    "train_sizes": (32, 32, 64),
    "fresh_data": False,
    "validation_freq": (4, 5, 6),
    "tta_flips": True,
}

LOSSES = {
    "cross_entropy": lambda r: nn.CrossEntropyLoss(label_smoothing=r.label_smoothing),
    "dice_ce": lambda r: DiceCELoss(),
}
#: What the recipe adds to ``get_optimizer``'s PyTorch defaults: SGD with Nesterov momentum.
OPTIMIZER_OPTIONS = {"sgd": {"momentum": 0.9, "nesterov": True}}


class ScheduledShapes(SyntheticShapes):
    """``SyntheticShapes`` whose images change size from epoch to epoch (``Recipe.size_at``).

    Images are drawn at the epoch's size, not shrunk from larger ones: a small epoch costs
    less to make as well as to train on. Without ``fresh_each_epoch`` the scenes stay the same
    (the same seed): drawn once, and again only when the size changes.

    Example:
        >>> ds = ScheduledShapes(4, Recipe(train_sizes=(32, 48)), seed=0)
        >>> ds[0][0].shape[-1], (ds.set_epoch(1), ds[0][0].shape[-1])[1]
        (32, 48)
    """

    def __init__(self, n: int, recipe: Recipe, seed: int = 0, fresh_each_epoch: bool = True):
        self.recipe = recipe
        config = ShapesConfig.preset(recipe.difficulty, size=recipe.size_at(0))
        super().__init__(n, config, seed, fresh_each_epoch=fresh_each_epoch)

    def set_epoch(self, epoch: int) -> None:
        size = self.recipe.size_at(epoch)
        if size != self.config.size:
            self.config = replace(self.config, size=size)
            if not self.fresh_each_epoch:  # the same scenes, drawn at the new size
                self.images, self.masks = make_shapes(self.n, self.config, self.seed)
        super().set_epoch(epoch)


class FlipAverage(nn.Module):
    """Test-time flips: in eval mode, the mean of the scores for ``x`` and its mirror image.

    In train mode it is ``model`` itself. Segmentation needs the mirrored scores flipped back
    before averaging, so that each pixel's two scores are for the same place.

    Example:
        >>> model = FlipAverage(nn.Conv2d(1, 1, kernel_size=(1, 2), padding=(0, 1), bias=False))
        >>> _ = model.eval()
        >>> tuple(model(torch.rand(2, 1, 4, 4)).shape)
        (2, 1, 4, 5)
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.model(x)  # (B, C, H, W)
        if self.training:
            return scores
        mirrored = self.model(x.flip(-1)).flip(-1)  # (B, C, H, W), columns back in place
        return (scores + mirrored) / 2


@dataclass
class RecipeRun:
    """A recipe made concrete: the trainer, its loaders and its learning-rate schedule (None
    for ``schedule="constant"``)."""

    trainer: Trainer
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    schedule: LRSchedulerCallback | None


def build_recipe(
    recipe: Recipe | None = None, seed: int = 0, device: str | torch.device | None = None
) -> RecipeRun:
    """Everything ``train_recipe`` trains with, built but not trained (e.g. for ``lr_find``).

    The validation set is fixed and disjoint from the training seeds, at ``image_size``
    whatever the training sizes. Weight decay applies to the convolution weights only
    (``weight_decay_groups``) unless ``decay_norm_and_bias``.

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
    train_loader, val_loader = _loaders(r, shapes, seed, device)
    unet = UNet(UNetConfig(num_classes=shapes.num_classes, base_width=r.base_width, depth=r.depth))
    model = FlipAverage(unet) if r.tta_flips else unet
    if r.decay_norm_and_bias:
        params = model.parameters()
    else:
        params = weight_decay_groups(model, r.weight_decay)
    optimizer = get_optimizer(
        r.optimizer, params, r.peak_lr, weight_decay=r.weight_decay,
        **OPTIMIZER_OPTIONS.get(r.optimizer, {}),
    )  # fmt: skip
    trainer = Trainer(
        model,
        optimizer,
        LOSSES[r.loss](r),
        metrics=[SegmentationMetrics(shapes.num_classes)],
        device=device,
        amp=r.amp,
        accumulate_grad_batches=r.accumulate_grad_batches,
        channels_last=r.channels_last,
    )
    if r.schedule == "constant":
        return RecipeRun(trainer, train_loader, val_loader, None)
    # OneCycleLR: the lr climbs from peak / 25 for warmup_share of the updates (default 30 %),
    # then falls to peak / 25e4; β₁ (Adam's momentum) goes 0.95 -> 0.85 -> 0.95, against the lr
    updates = r.epochs * updates_from_batches(len(train_loader), r.accumulate_grad_batches)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, r.peak_lr, total_steps=updates, pct_start=r.warmup_share
    )
    return RecipeRun(trainer, train_loader, val_loader, LRSchedulerCallback(schedule, "step"))


def _loaders(r: Recipe, shapes: ShapesConfig, seed: int, device) -> tuple:
    """The training and validation loaders; validation is fixed, at ``image_size``."""
    if r.train_sizes:
        train = ScheduledShapes(r.samples_per_epoch, r, seed, fresh_each_epoch=r.fresh_data)
    else:
        train = SyntheticShapes(r.samples_per_epoch, shapes, seed, fresh_each_epoch=r.fresh_data)
    val = SyntheticShapes(r.val_samples, shapes, seed=10_000 + seed)
    return make_loaders(train, val, r.batch_size, device, drop_last=r.drop_last, val_batch_size=64)


def train_recipe(
    recipe: Recipe | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    callbacks: list | None = None,
    verbose: int = 0,
):
    """Train a U-Net with ``recipe`` and return ``(trainer, history, seconds)``.

    ``seconds`` is the wall time of ``fit``: building the model and drawing the first
    epoch's images come before it; with ``fresh_data`` the later epochs' images are drawn
    inside it.
    """
    r = recipe or Recipe()
    run = build_recipe(r, seed, device)
    cbs = [cb for cb in (run.schedule, *(callbacks or [])) if cb is not None]
    start = time.perf_counter()
    history = run.trainer.fit(
        run.train_loader,
        r.epochs,
        run.val_loader,
        callbacks=cbs,
        validation_freq=r.validation_freq,
        verbose=verbose,
    )
    return run.trainer, history, time.perf_counter() - start


def speedrun_records() -> dict:
    """The speedrun's measurements, shipped with labpkg (``labpkg/records/speedrun.json``).

    Returns:
        ``{"target", "metric", "clock", "rows": [...]}``; each row holds the ``change``
        tried, its ``kind`` (``"record"``: kept; ``"dropped"``; ``"laptop"``: the record
        under the AVX2 limit; ``"retimed"``: the record before it, timed again on another
        day), the ``recipe`` fields, the ``seeds``, the ``seconds`` each took to reach the
        target (None: not by the last epoch or within the time limit), their ``median``,
        the ``machine`` and, in rows recorded since it was added, the ``epochs`` each seed
        trained (a seed that reached the target stopped at the epoch whose validation
        reached it).
        ``benchmarks/recipe.py --speedrun --record`` appends rows.

    Example:
        >>> from dataclasses import asdict
        >>> speedrun_records()["rows"][0]["recipe"] == asdict(Recipe())  # the baseline
        True
    """
    text = resources.files("labpkg").joinpath("records", "speedrun.json").read_text()
    records = json.loads(text)
    for row in records["rows"]:
        recipe = row["recipe"]  # JSON has lists where a Recipe holds tuples
        recipe["train_sizes"] = tuple(recipe["train_sizes"])
        if isinstance(recipe["validation_freq"], list):
            recipe["validation_freq"] = tuple(recipe["validation_freq"])
    return records

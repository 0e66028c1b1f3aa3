"""Command line: ``python -m labpkg train --epochs 5 --batch-size 32``.

Trains the U-Net on synthetic shapes, prints the iteration accounting first (the book's
arithmetic for this run), saves the best checkpoint and a plot of the history.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from labpkg import counting, distributed
from labpkg.callbacks import ModelCheckpoint
from labpkg.data import ShapesConfig, SyntheticShapes, make_loaders
from labpkg.devices import describe_device, pick_device
from labpkg.metrics import SegmentationMetrics
from labpkg.models import UNet, UNetConfig, count_parameters
from labpkg.optim import OPTIMIZERS, get_optimizer
from labpkg.trainer import Trainer

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labpkg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the U-Net on synthetic shapes")
    train.add_argument("--epochs", type=_positive_int, default=5)
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--samples", type=_positive_int, default=1000, help="training samples")
    train.add_argument("--val-samples", type=_positive_int, default=200)
    train.add_argument("--image-size", type=_positive_int, default=64)
    train.add_argument("--difficulty", choices=["easy", "medium", "hard"], default="medium")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    train.add_argument("--lr", type=_positive_float, default=3e-3)
    train.add_argument("--base-width", type=_positive_int, default=16)
    train.add_argument("--accumulate", type=_positive_int, default=1)
    train.add_argument("--drop-last", action="store_true")
    train.add_argument("--amp", action="store_true", help="mixed precision (bf16 on CPU)")
    train.add_argument("--channels-last", action="store_true")
    train.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=Path("runs/latest"))
    train.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    return parser


def accounting(args: argparse.Namespace, world: int = 1) -> str:
    """The run's arithmetic, printed before training so the reader can check it."""
    n, b, k, drop = args.samples, args.batch_size, args.accumulate, args.drop_last
    per_epoch = counting.batches_per_epoch(n, b, drop, world)
    updates = counting.updates_per_epoch(n, b, k, drop, world)
    effective = counting.effective_batch_size(b, k, world)
    return "\n".join(
        [
            f"training samples      {n}",
            f"batch size            {b} per process, {world} process(es)",
            f"mini-batches / epoch  {per_epoch}",
            f"effective batch       {effective} (batch x accumulate {k} x processes {world})",
            f"updates / epoch       {updates}",
            f"epochs                {args.epochs}",
            f"total updates         {updates * args.epochs}",
        ]
    )


def train(args: argparse.Namespace) -> int:
    # under torchrun every process trains on its share; --batch-size is per process
    device = distributed.init_from_env(device=args.device) or pick_device(args.device)
    torch.manual_seed(args.seed)
    shapes = ShapesConfig.preset(args.difficulty, size=args.image_size)
    train_ds = SyntheticShapes(args.samples, shapes, seed=args.seed)
    val_ds = SyntheticShapes(args.val_samples, shapes, seed=args.seed + 10_000)
    train_loader, val_loader = make_loaders(
        train_ds, val_ds, args.batch_size, device, drop_last=args.drop_last
    )
    model = UNet(UNetConfig(num_classes=shapes.num_classes, base_width=args.base_width))
    trainer = Trainer(
        model,
        get_optimizer(args.optimizer, model.parameters(), lr=args.lr),
        torch.nn.CrossEntropyLoss(),
        metrics=[SegmentationMetrics(shapes.num_classes)],
        device=device,
        amp=args.amp,
        accumulate_grad_batches=args.accumulate,
        channels_last=args.channels_last,
    )
    if distributed.rank() == 0:
        print(accounting(args, distributed.world_size()))
        print(f"device                {describe_device(device)}")
        print(f"model parameters      {count_parameters(model):,}")
    best = ModelCheckpoint(str(args.out / "best.pt"), monitor="val_mean_iou", save_best_only=True)
    history = trainer.fit(
        train_loader, args.epochs, val_loader, callbacks=[best], verbose=args.verbose
    )
    if distributed.rank() == 0:
        history.plot().savefig(args.out / "history.png", dpi=100)
        print(history.table())
        print(f"best checkpoint: {best.best_path} (val_mean_iou={best.best})")
        print(f"history plot:    {args.out / 'history.png'}")
    if trainer.state.interrupted:
        return 130
    if trainer.state.diverged:
        print("training diverged (NaN/inf loss or weights): lower --lr", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.image_size % 8:
        parser.error(f"--image-size must be a multiple of 8 for the U-Net, got {args.image_size}")
    try:
        return train(args)
    except ValueError as err:  # bad combinations that only the library can judge
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

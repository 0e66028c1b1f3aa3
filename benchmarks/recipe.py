"""Does the default recipe reach validation mIoU >= 0.90 within 60 s of training, every seed?

Run: .venv/bin/python benchmarks/recipe.py [--seeds 0 1 2 3 4] [--epochs 5] [--peak-lr 6e-3 3e-2]
Prints one row per seed (and peak learning rate): epochs run, training seconds, first epoch at
>= 0.90, final mIoU. Uses 2 threads, like the machines the book is tested on. ``--peak-lr``
compares one-cycle peaks, e.g. the recipe's against what ``labpkg.lr_find`` suggests.
"""

from __future__ import annotations

import argparse
import time

import torch

import labpkg
from labpkg.callbacks import Callback
from labpkg.recipes import Recipe, train_recipe

TARGET = 0.90


class Clock(Callback):
    """Training seconds at the end of each epoch (validation included)."""

    def on_train_begin(self, logs=None):
        self.start, self.times = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=Recipe().epochs)
    parser.add_argument("--peak-lr", type=float, nargs="+", default=[Recipe().peak_lr])
    args = parser.parse_args()
    torch.set_num_threads(2)
    for peak in args.peak_lr:
        run_seeds(Recipe(epochs=args.epochs, peak_lr=peak), args.seeds)
    print(f"labpkg {labpkg.__version__}, torch {torch.__version__}")


def run_seeds(recipe: Recipe, seeds: list[int]) -> None:
    print(f"recipe: {recipe}")
    print(f"{'seed':>4} {'epochs':>6} {'seconds':>8} {'first>=0.90':>12} {'at s':>6} {'final':>6}")
    ok = 0
    for seed in seeds:
        clock = Clock()
        _, history, seconds = train_recipe(recipe, seed=seed, device="cpu", callbacks=[clock])
        miou = history.history["val_mean_iou"]
        hit = next((i for i, v in enumerate(miou) if v >= TARGET), None)
        at = f"{clock.times[hit]:.0f}" if hit is not None else "-"
        ok += hit is not None and clock.times[hit] <= 60
        first = str(hit + 1) if hit is not None else "never"
        print(f"{seed:>4} {len(miou):>6} {seconds:>8.1f} {first:>12} {at:>6} {miou[-1]:>6.3f}")
    print(f"seeds reaching {TARGET} within 60 s: {ok} of {len(seeds)}")


if __name__ == "__main__":
    main()

"""The learning-rate range test ("LR finder"): the learning rates where the loss falls fastest.

Train for about a hundred updates while the learning rate grows exponentially from tiny to
large, record the loss of each mini-batch, smooth it, and read off where it falls fastest.
Afterwards everything the test touched (weights, optimizer state, the Trainer's counters, the
random number generators) is put back exactly, so training starts as if it had not run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

from torch.utils.data import DataLoader

from labpkg.callbacks.base import CallbackList
from labpkg.callbacks.lr import set_lr
from labpkg.core.checkpoint import rng_state, set_rng_state
from labpkg.core.checks import as_int
from labpkg.core.reproducibility import data_generators

__all__ = ["LRFinderResult", "lr_find"]


@dataclass(frozen=True)
class LRFinderResult:
    """What the range test measured.

    Attributes:
        lrs: the learning rate of each update.
        losses: the mini-batch loss at each update (before the step).
        smoothed: the losses smoothed (exponential moving average, bias-corrected).
        suggestion: the learning rate where the smoothed loss fell fastest per factor of lr.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float

    def plot(self):
        """Loss and smoothed loss against learning rate (log scale), the suggestion marked.

        Returns:
            A matplotlib ``Figure``.
        """
        from labpkg.figures import viz  # matplotlib loads only when a plot is asked for

        curves = {"mini-batch loss": self.losses, "smoothed": self.smoothed}
        fig = viz.plot_curves(curves, xlabel="learning rate", x=self.lrs, logx=True)
        ax = fig.axes[0]
        ax.axvline(self.suggestion, color="black", linestyle="--", linewidth=1,
                   label=f"suggested lr {self.suggestion:.1e}")  # fmt: skip
        viz.legend_outside(ax)  # again, with the suggestion's line
        return fig


def lr_find(
    trainer,
    loader: DataLoader,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_updates: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
) -> LRFinderResult:
    """Run the range test with ``trainer``'s model, optimizer and loss, then undo it.

    Each update uses one mini-batch (no accumulation), under the trainer's device, AMP and
    gradient clipping settings; the loader is cycled if it has fewer mini-batches.

    Args:
        trainer: a ``labpkg.Trainer``.
        loader: training mini-batches.
        start_lr, end_lr: the first and the last learning rate (0 < start < end).
        num_updates: updates between them (the rate grows by a constant factor each update).
        smoothing: weight of the past in the moving average of the loss, in [0, 1).
        diverge: stop early once the smoothed loss exceeds ``diverge`` × its minimum.

    Returns:
        An ``LRFinderResult``.

    Example:
        >>> import labpkg, torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)  # a "segmentation model" of one layer
        >>> trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters()), "cross_entropy")
        >>> pairs = TensorDataset(torch.rand(8, 3, 4, 4), torch.randint(0, 2, (8, 4, 4)))
        >>> found = lr_find(trainer, DataLoader(pairs, batch_size=4), 1e-4, 1.0, num_updates=5)
        >>> [f"{lr:.0e}" for lr in found.lrs]  # equal steps on a log scale
        ['1e-04', '1e-03', '1e-02', '1e-01', '1e+00']
    """
    _check(start_lr, end_lr, num_updates, smoothing, diverge)
    saved = _snapshot(trainer, loader)
    rates = _rates(start_lr, end_lr, num_updates)
    trainer.callbacks = CallbackList([], trainer)  # the updates call no fit's hooks
    try:
        with trainer._applied_steps:  # counts float16's skipped steps; removed after
            lrs, losses, smoothed = _range_test(trainer, loader, rates, smoothing, diverge)
    finally:
        _restore(trainer, saved)  # also after an error or Ctrl-C: nothing stays changed
    return LRFinderResult(lrs, losses, smoothed, _steepest(lrs, smoothed))


def _rates(start: float, end: float, n: int) -> list[float]:
    return [start * (end / start) ** (i / max(n - 1, 1)) for i in range(n)]


def _range_test(trainer, loader, rates, beta, diverge) -> tuple[list, list, list]:
    """Train one mini-batch per rate; stop once the smoothed loss passes ``diverge`` × its
    minimum. Returns the rates used, the losses, and the losses smoothed."""
    model, lrs, losses, smoothed = trainer.model, [], [], []
    average = 0.0  # the moving average of the loss, before its bias correction
    model.train()
    # trainer._pairs: any batch but (inputs, target) is refused with a clear error
    pairs = enumerate(trainer._pairs(_cycle(loader)))
    for lr, (update, (inputs, target)) in zip(rates, pairs, strict=False):
        set_lr(trainer.optimizer, lr)
        inputs, target = trainer._to_device(inputs, target)
        _, loss = trainer._forward(model, inputs, target)  # forward and loss, as in fit
        trainer.scaler.scale(loss).backward()
        trainer.optimizer_step(update)  # clipping, the float16 scaler, zero_grad
        lrs.append(lr)
        losses.append(loss.item())  # one host read per update: the test needs the number
        average = beta * average + (1 - beta) * losses[-1]
        smoothed.append(average / (1 - beta ** len(losses)))  # the average starts at 0
        if not math.isfinite(losses[-1]) or smoothed[-1] > diverge * min(smoothed):
            break  # the loss has blown up: larger rates would tell nothing more
    return lrs, losses, smoothed


def _steepest(lrs: list[float], smoothed: list[float]) -> float:
    """The lr of the steepest fall of the smoothed loss per unit of log(lr), looked for
    before the loss's minimum (after it the loss is rising or noisy)."""
    lowest = min(range(len(smoothed)), key=smoothed.__getitem__)
    if lowest < 2:
        return lrs[0]  # the loss never fell: even the smallest rate is as good as any
    slopes = [
        (smoothed[i + 1] - smoothed[i - 1]) / math.log(lrs[i + 1] / lrs[i - 1])
        for i in range(1, lowest)
    ]
    return lrs[1 + min(range(len(slopes)), key=slopes.__getitem__)]


def _cycle(loader: DataLoader) -> Iterator:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader yields no mini-batches: give lr_find some data")


def _snapshot(trainer, loader: DataLoader) -> dict:
    return {
        # the loader's, its sampler's and its augmentations' (shuffle, worker seeds, flips)
        "generators": [(g, g.get_state()) for g in data_generators(loader).values()],
        "model": copy.deepcopy(trainer.model.state_dict()),
        "optimizer": copy.deepcopy(trainer.optimizer.state_dict()),
        "scaler": copy.deepcopy(trainer.scaler.state_dict()),
        "state": copy.deepcopy(trainer.state),
        "callbacks": trainer.callbacks,
        "training": trainer.model.training,
        "rng": rng_state(),  # torch, CUDA, Python and NumPy, as checkpoints save them
    }


def _restore(trainer, saved: dict) -> None:
    trainer.model.load_state_dict(saved["model"])
    trainer.optimizer.load_state_dict(saved["optimizer"])
    trainer.optimizer.zero_grad(set_to_none=True)
    if saved["scaler"]:  # an empty dict: the scaler is off
        trainer.scaler.load_state_dict(saved["scaler"])
    trainer.state, trainer.callbacks = saved["state"], saved["callbacks"]
    trainer.model.train(saved["training"])
    set_rng_state(saved["rng"])
    for generator, state in saved["generators"]:
        generator.set_state(state)


def _check(start_lr, end_lr, num_updates, smoothing, diverge) -> None:
    if not (0 < start_lr < end_lr and math.isfinite(end_lr)):
        raise ValueError(f"need 0 < start_lr < end_lr < inf, got {start_lr} and {end_lr}")
    as_int(num_updates, "num_updates (3 or more, to find a slope)", 3)
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if diverge <= 1:
        raise ValueError(f"diverge must be > 1 (a multiple of the lowest loss), got {diverge}")

"""Step times of several settings at several batch sizes, in a table that checks itself.

The settings (float32, autocast, channels_last) are measured interleaved, and the table
refuses a measurement the machine disturbed.

``compare_settings`` builds one training step per (setting, batch size) with
``training_step``; ``time_steps`` times them round by round and returns a ``TimingTable``,
or raises ``UnsteadyTiming`` when the table fails its checks (``TimingTable.problems``)."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from labpkg.core.devices import _synchronize, amp_settings

__all__ = [
    "UnsteadyTiming",
    "TimingTable",
    "time_steps",
    "training_step",
    "compare_settings",
]


class UnsteadyTiming(RuntimeError):
    """A timing table failed its sanity checks: something else was using the machine."""


@dataclass(frozen=True)
class TimingTable:
    """Step times of several settings at several batch sizes, one time per round.

    ``times[(setting, batch_size)]`` holds one time in milliseconds per round; in each
    round every (setting, batch size) ran once, so a slow spell of the machine hits all of
    them alike and the ratios of one round stay fair.

    Example:
        >>> times = {("fp32", 8): (60.0, 62.0, 61.0), ("amp", 8): (30.0, 31.0, 31.0)}
        >>> table = TimingTable(times, baseline="fp32")
        >>> round(table.speedup("amp", 8), 2), table.problems()
        (2.0, [])
    """

    times: dict[tuple[str, int], tuple[float, ...]]
    baseline: str

    @property
    def settings(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.times))

    @property
    def batch_sizes(self) -> list[int]:
        return sorted({batch for _, batch in self.times})

    def ms(self, setting: str, batch_size: int) -> float:
        """Median milliseconds per step."""
        return statistics.median(self.times[setting, batch_size])

    def spread(self, setting: str, batch_size: int) -> float:
        """The median round over the fastest: 1.0 when the rounds agree.

        At most ``s`` means at least half of the rounds took within ``s`` times the fastest:
        one disturbed round is outvoted (and the median ignores it), a disturbed majority
        is not.
        """
        times = self.times[setting, batch_size]
        return statistics.median(times) / min(times)

    def speedup(self, setting: str, batch_size: int) -> float:
        """How many times as fast as the baseline: the median, over rounds, of the
        baseline's time divided by the setting's time in the same round (above 1: faster)."""
        pairs = zip(
            self.times[self.baseline, batch_size], self.times[setting, batch_size], strict=True
        )
        return statistics.median(base / other for base, other in pairs)

    def problems(self, max_spread: float = 1.5) -> list[str]:
        """What makes the table untrustworthy; empty when it passes both checks.

        1. The rounds agree: the median round within ``max_spread`` times the fastest.
        2. Time grows roughly with the batch: k times the images take between 0.8 and 2k
           times as long (a GPU that was idle at the small batch may take barely longer;
           per-image time more than doubling means something else took the machine).
        """
        found = []
        for (name, batch), times in self.times.items():
            if self.spread(name, batch) > max_spread:
                rounded = ", ".join(f"{t:.1f}" for t in times)
                found.append(f"{name} at batch {batch}: rounds disagree ({rounded} ms)")
        for name in self.settings:
            for small, large in itertools.pairwise(self.batch_sizes):
                ratio = self.ms(name, large) / self.ms(name, small)
                if not 0.8 <= ratio <= 2 * large / small:
                    found.append(
                        f"{name}: batch {large} took {ratio:.2f}× the time of batch {small}"
                    )
        return found

    def __str__(self) -> str:
        # columns only as wide as their contents: the table fits a book page's code column
        title = "ms per step (speed-up)"
        rows = [[f"batch {b}" for b in self.batch_sizes]]
        for name in self.settings:
            rows.append([
                f"{self.ms(name, b):.1f}"
                + ("" if name == self.baseline else f" ({self.speedup(name, b):.2f}×)")
                for b in self.batch_sizes
            ])  # fmt: skip
        first = max(len(title), *(len(name) for name in self.settings)) + 1
        width = max(len(cell) for row in rows for cell in row) + 2
        names = [title, *self.settings]
        return "\n".join(
            f"{name:<{first}}" + "".join(cell.rjust(width) for cell in row)
            for name, row in zip(names, rows, strict=True)
        )


def time_steps(
    steps: dict[tuple[str, int], Callable[[], object]],
    baseline: str,
    device: torch.device,
    rounds: int = 5,
    max_spread: float = 1.5,
    attempts: int = 3,
) -> TimingTable:
    """Time each step ``rounds`` times, interleaved, and refuse a disturbed table.

    Every step runs once to warm up (lazy initialisation, cuDNN's choice of kernels). Then
    each round runs every step once, in an order that rotates from round to round. If the
    table has ``problems(max_spread)``, it is measured again, up to ``attempts`` times.

    Args:
        steps: ``(setting, batch_size) -> step``; each call does one unit of work.
        baseline: the setting the speed-ups are relative to.
        device: where the steps run (synchronised before each clock read).
        rounds: timed calls of each step (default 5).
        max_spread: how much slower than the fastest round the median may be (default 1.5).
        attempts: measurements before giving up (default 3).

    Returns:
        The first ``TimingTable`` without problems.

    Raises:
        UnsteadyTiming: if every attempt had problems; the message lists the last ones.
    """
    for step in steps.values():
        step()
    keys = list(steps)
    for _ in range(attempts):
        times: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
        for r in range(rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                times[key].append(_timed_ms(steps[key], device))
        table = TimingTable({key: tuple(times[key]) for key in keys}, baseline)
        found = table.problems(max_spread)
        if not found:
            return table
    raise UnsteadyTiming(f"{attempts} measurements were disturbed: " + "; ".join(found))


def _timed_ms(fn: Callable[[], object], device: torch.device) -> float:
    _synchronize(device)  # GPU work is asynchronous: wait for it before reading the clock
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def training_step(
    model: nn.Module,
    batch_size: int,
    device: torch.device,
    amp: bool = False,
    channels_last: bool = False,
    image_size: int = 64,
    num_classes: int = 4,
) -> Callable[[], None]:
    """One SGD training step of ``model`` on a fixed random batch (the Trainer's AMP calls).

    Args:
        model: a segmentation network; moved to ``device`` (and to channels_last).
        batch_size: images per step.
        device: where to train.
        amp: autocast in the 16-bit type ``amp_settings(device)`` picks, with a GradScaler
            for float16 (default False).
        channels_last: NHWC memory layout for the model and the batch (default False).
        image_size, num_classes: the random batch's images and labels (64, 4).

    Returns:
        A function that runs one step each call.

    Example:
        >>> from labpkg.nn.models import UNet, UNetConfig
        >>> step = training_step(UNet(UNetConfig(base_width=4, depth=2)), 2, torch.device("cpu"),
        ...                      amp=True, channels_last=True, image_size=16)
        >>> step()
    """
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=layout).train()
    x = torch.rand(batch_size, 3, image_size, image_size, device=device)
    x = x.contiguous(memory_format=layout)
    y = torch.randint(0, num_classes, (batch_size, image_size, image_size), device=device)
    dtype, needs_scaler = amp_settings(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and needs_scaler)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def compare_settings(
    make_model: Callable[[], nn.Module],
    settings: dict[str, dict[str, bool]],
    batch_sizes: Sequence[int],
    device: torch.device,
    image_size: int = 64,
    rounds: int = 5,
    max_spread: float = 1.5,
) -> TimingTable:
    """Time a training step of ``make_model()`` under each setting, at each batch size.

    Args:
        make_model: builds a fresh model (called with seed 0 for each setting and batch).
        settings: name -> options of ``training_step`` (``amp``, ``channels_last``); the
            first is the baseline of the speed-ups.
        batch_sizes: images per step, smallest first.
        device: where to train.
        image_size: height and width of the random images (default 64).
        rounds, max_spread: as in ``time_steps`` (5, 1.5).

    Returns:
        A ``TimingTable`` that passed its checks (``UnsteadyTiming`` otherwise).
    """
    steps = {}
    for name, options in settings.items():
        for batch_size in batch_sizes:
            torch.manual_seed(0)
            model = make_model()
            step = training_step(model, batch_size, device, image_size=image_size, **options)
            steps[name, batch_size] = step
    baseline = next(iter(settings))
    return time_steps(steps, baseline, device, rounds=rounds, max_spread=max_spread)

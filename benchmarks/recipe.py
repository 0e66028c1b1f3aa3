"""Does the default recipe reach validation mIoU >= 0.90 within 60 s of training, every seed?

Run: .venv/bin/python benchmarks/recipe.py [--seeds 0 1 2 3 4] [--epochs 5] [--peak-lr 6e-3 3e-2]
Prints one row per seed (and peak learning rate): epochs run, training seconds, first epoch at
>= 0.90, final mIoU. Uses 2 threads, like the machines the book is tested on. ``--peak-lr``
compares one-cycle peaks, e.g. the recipe's against what ``labpkg.lr_find`` suggests.

The speedrun mode times ``Recipe.speedrun()`` (or ``Recipe()``, ``--base default``) to the
same target, seed by seed, and prints the median::

    .venv/bin/python benchmarks/recipe.py --speedrun
    .venv/bin/python benchmarks/recipe.py --speedrun --base default --set batch_size=16
    .venv/bin/python benchmarks/recipe.py --speedrun --record "batch 16" --kind dropped

Its clock starts before the run is built (the training images of the first epoch are drawn
then, as every later epoch's are drawn inside ``fit``) and stops at the end of the first
validation that reaches the target: training, data generation and validation passes all
count. One untimed warm-up run of the same recipe, a few mini-batches per epoch, comes first,
so that no seed pays the process's one-off start-up costs. Training stops at the target (what
follows cannot change the time to it); a seed that has not reached it by the recipe's last
epoch, or reaches it only after ``--limit`` seconds, counts as a miss. ``--record`` appends
the result to ``labpkg/records/speedrun.json``, the file the capstone chapter reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import labpkg
from labpkg.callbacks import Callback
from labpkg.core.devices import precision_note
from labpkg.recipes import Recipe, train_recipe

TARGET = 0.90
MAX_OTHERS_LOAD, RETRIES = 0.2, 2  # cores other processes may use during a run (others_load)
RECORDS = Path(__file__).resolve().parents[1] / "labpkg" / "records" / "speedrun.json"


class Clock(Callback):
    """Training seconds at the end of each epoch (validation included), from ``start`` if
    given (e.g. before the run was built), else from the start of ``fit``."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        self.origin = start

    def on_train_begin(self, logs=None):
        self.start = self.origin if self.origin is not None else time.perf_counter()
        self.times = []

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


class StopAtTarget(Callback):
    """End training at the first validation >= ``target``, or once ``limit`` s have passed;
    a validation that reaches the target after ``limit`` s is a miss."""

    def __init__(self, clock: Clock, target: float = TARGET, limit: float = math.inf) -> None:
        super().__init__()
        self.clock, self.target, self.limit = clock, target, limit
        self.seconds: float | None = None
        self.epoch: int | None = None  # 1-based, as printed

    def on_epoch_end(self, epoch, logs=None):
        reached = (logs or {}).get("val_mean_iou", 0.0) >= self.target
        if reached and self.seconds is None and self.clock.times[-1] <= self.limit:
            self.seconds, self.epoch = self.clock.times[-1], epoch + 1
        if self.seconds is not None or self.clock.times[-1] > self.limit:
            self.trainer.state.stop_training = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--peak-lr", type=float, nargs="+", default=[Recipe().peak_lr])
    parser.add_argument("--speedrun", action="store_true", help="time to the target per seed")
    parser.add_argument("--base", choices=["speedrun", "default"], default="speedrun")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds before a miss")
    parser.add_argument("--record", metavar="CHANGE", help="append the result to the records")
    parser.add_argument(
        "--kind", choices=["record", "dropped", "laptop", "retimed"], default="record"
    )
    parser.add_argument("--records", type=Path, default=RECORDS, help="the file --record extends")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.speedrun:
        recipe = Recipe.speedrun() if args.base == "speedrun" else Recipe()
        recipe = dataclasses.replace(recipe, **overrides(args.set, args.epochs))
        row = speedrun_seeds(recipe, args.seeds, args.limit)
        if args.record:
            record(row, args.record, args.kind, args.records)
    else:
        for peak in args.peak_lr:
            run_seeds(Recipe(epochs=args.epochs or Recipe().epochs, peak_lr=peak), args.seeds)
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


# ----------------------------------------------------------------------------- speedrun
def overrides(pairs: list[str], epochs: int | None) -> dict:
    """``["batch_size=16", "train_sizes=32,64"]`` as Recipe fields of the right types."""
    types = {f.name: type(getattr(Recipe(), f.name)) for f in dataclasses.fields(Recipe)}
    changes = {} if epochs is None else {"epochs": epochs}
    for pair in pairs:
        name, text = pair.split("=", 1)
        if name not in types:
            raise SystemExit(f"no Recipe field {name!r}; fields: {sorted(types)}")
        if types[name] is tuple or (name == "validation_freq" and "," in text):
            changes[name] = tuple(int(s) for s in text.split(",") if s)
        elif types[name] is bool:
            changes[name] = text.lower() in ("1", "true", "yes")
        elif name == "amp" and text != "auto":
            changes[name] = text.lower() == "true"
        else:
            changes[name] = types[name](text)
    return changes


def time_to_target(recipe: Recipe, seed: int, limit: float) -> tuple[float | None, int, float]:
    """Seconds from building the run to the first validation >= TARGET (None: a miss), the
    epochs trained, and the last validation mIoU."""
    start = time.perf_counter()
    clock = Clock(start)
    stop = StopAtTarget(clock, TARGET, limit)
    _, history, _ = train_recipe(recipe, seed=seed, device="cpu", callbacks=[clock, stop])
    miou = [v for v in history.history["val_mean_iou"] if not math.isnan(v)]
    return stop.seconds, len(history.epoch), miou[-1] if miou else math.nan


def busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far (Linux; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(patience: float = 45.0) -> None:
    """Wait (up to ``patience`` s) for a second in which other processes leave the CPU idle."""
    deadline = time.perf_counter() + patience
    while others_load(lambda: time.sleep(1.0))[1] > MAX_OTHERS_LOAD:
        if time.perf_counter() > deadline:
            return


def others_load(run) -> tuple[object, float]:
    """``run()``'s result, and how many cores other processes kept busy meanwhile: the lock
    keeps measurements apart, not everything else; a run they slowed down is run again."""
    wall, mine, busy = time.perf_counter(), time.process_time(), busy_seconds()
    result = run()
    others = busy_seconds() - busy - (time.process_time() - mine)
    return result, max(others, 0.0) / (time.perf_counter() - wall)


def warm_up(recipe: Recipe) -> None:
    """A few mini-batches per epoch and one validation, untimed: every kernel the run needs
    (each training size, validation) is created once before the clock starts."""
    small = dataclasses.replace(recipe, samples_per_epoch=4 * recipe.batch_size, val_samples=64)
    small = dataclasses.replace(small, validation_freq=small.epochs)
    train_recipe(small, seed=12_345, device="cpu")


def speedrun_seeds(recipe: Recipe, seeds: list[int], limit: float) -> dict:
    changed = {
        f.name: getattr(recipe, f.name)
        for f in dataclasses.fields(Recipe)
        if getattr(recipe, f.name) != getattr(Recipe(), f.name)
    }
    print(f"changes to Recipe(): {changed}")
    warm_up(recipe)
    print(f"{'seed':>4} {'s to ' + str(TARGET):>9} {'epochs':>6} {'last mIoU':>9} {'others':>6}")
    seconds, epochs_run, loads = [], [], []
    for seed in seeds:
        for _ in range(RETRIES):  # a run another process slowed down is run again
            wait_for_quiet()
            (hit, epochs, miou), load = others_load(lambda s=seed: time_to_target(recipe, s, limit))
            shown = "miss" if hit is None else f"{hit:.1f}"
            print(f"{seed:>4} {shown:>9} {epochs:>6} {miou:>9.3f} {load:>6.2f}", flush=True)
            if load <= MAX_OTHERS_LOAD:
                break
            print("     (the CPU was shared with another process: again)")
        seconds.append(None if hit is None else round(hit, 2))
        epochs_run.append(epochs)  # a hit stops at the epoch whose validation reached the target
        loads.append(round(load, 2))
    median = median_seconds(seconds)
    reached = sum(s is not None for s in seconds)
    shown = "-" if median is None else f"{median:.1f} s"
    print(f"median {shown}; {reached} of {len(seeds)} seeds reached {TARGET}")
    return {
        "recipe": {f.name: getattr(recipe, f.name) for f in dataclasses.fields(Recipe)},
        "seeds": seeds,
        "seconds": seconds,
        "median": median,
        "epochs": epochs_run,
        "others_load": loads,
        "machine": machine(),
    }


def median_seconds(seconds: list[float | None]) -> float | None:
    """The median, a miss counting as infinitely slow (None if half or more missed)."""
    median = statistics.median(math.inf if s is None else s for s in seconds)
    return None if math.isinf(median) else median


def machine() -> dict:
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "amp": precision_note(torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "labpkg": labpkg.__version__,
        "python": platform.python_version(),
    }


def record(row: dict, change: str, kind: str, path: Path = RECORDS) -> None:
    records = json.loads(path.read_text())
    row = {"change": change, "kind": kind, **row}
    records["rows"].append(row)
    path.write_text(json.dumps(records, indent=1) + "\n")
    print(f"recorded as {kind!r} in {path.name}")


if __name__ == "__main__":
    main()

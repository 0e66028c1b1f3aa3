"""Where the Trainer's time goes beyond a hand-written loop: a table in µs per mini-batch.

Run: .venv/bin/python benchmarks/trainer_profile.py [--callbacks]
The tiny case of trainer_overhead.py (2-conv model, 16x16, batch 32, 64 mini-batches per
epoch), where the Trainer's bookkeeping shows most. First the gap itself, from the paired,
interleaved timing of whole epochs. Then each piece of extra work the Trainer does, timed
alone on the same objects (timeit, median of repeats): the pieces that run every mini-batch,
then those that run once per epoch or per ``fit``, divided by the epoch's mini-batches.

Each row is a lower bound: timed alone, a piece runs from warm caches, while in the loop it
follows the convolutions, where a small tensor operation costs several times more. Paired in
place against the same hand loop without them, the two ``.to`` calls that had nothing to do
cost 0.6% of the tiny case's time and the running loss's former four operations 0.55%, each
more than this table gave them. ``--callbacks`` profiles the realistic callback set of
trainer_overhead.py's third case instead of ``verbose=0``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import tempfile
import timeit

import torch
from _timing import paired_ratio
from torch import nn
from trainer_overhead import hand_loop, realistic_callbacks, tiny_case

from labpkg.core import checks, counting, distributed
from labpkg.loop import resume
from labpkg.loop.interrupts import fitting
from labpkg.nn.metrics import confusion_matrix


def per_call(fn, number: int = 2000, repeat: int = 9) -> float:
    """Median µs of one call of ``fn``."""
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def gap(trainer, model, optimizer, loader, classes, fit_options, pairs: int) -> tuple:
    """µs per mini-batch: the hand loop, the Trainer, from paired whole-epoch timings."""
    _, ta, tb = paired_ratio(
        lambda: hand_loop(model, optimizer, loader, classes),
        lambda: trainer.fit(loader, epochs=1, **fit_options),
        pairs=pairs,
    )
    return ta / len(loader) * 1e6, tb / len(loader) * 1e6


def batch_rows(trainer, loader, classes) -> list[tuple[str, float]]:
    """Each piece of ``_train_epoch``'s and ``train_step``'s work per mini-batch."""
    model, state, callbacks = trainer.model, trainer.state, trainer.callbacks
    x, y = next(iter(loader))
    logits = model(x)
    loss = trainer.loss_fn(logits, y)
    batches = list(itertools.islice(loader, 64))
    param = nn.Parameter(torch.ones(()))
    total = torch.zeros(())
    metric, cm = trainer.metrics[0], torch.zeros(classes, classes, dtype=torch.long)
    trainer._input_checks.set(False)  # the state of every mini-batch after the first

    def counters():
        state.batch = 1
        state.batches_seen += 1
        state.samples_seen += len(y)
        state.global_step += 1

    def contexts(amp):
        with distributed.sync_gradients(model, now=True):
            if amp:
                with trainer._autocast():
                    pass

    def share(group):
        return (param * 1 if group == 1 else param * 1 / group).backward()

    def stop_checks():
        trainer._interrupt.check()
        return state.stop_training

    rows = [
        ("batch iteration: _pairs generator, islice, enumerate", (
            per_call(lambda: [b for b in enumerate(trainer._pairs(itertools.islice(
                iter(batches), len(batches))))], 200)
            - per_call(lambda: [b for b in batches], 200)) / len(batches)),
        ("counters: state.batch, batches/samples_seen, global_step", per_call(counters)),
        ("first-batch checks turned off", per_call(lambda: trainer._input_checks.set(False))),
        ("callbacks.on_train_batch_begin", per_call(lambda: callbacks.on_train_batch_begin(1))),
        ("_to_device: dtype checks (no .to here)", per_call(lambda: trainer._to_device(x, y))),
        ("accumulation: ends_update, group_size", per_call(lambda: (
            counting.ends_update(1, trainer.accumulate, 64),
            counting.group_size(1, trainer.accumulate, 64)))),
        ("sync_gradients context (not distributed)", per_call(lambda: contexts(False))),
        ("autocast context (AMP off)", per_call(lambda: contexts(True)) - per_call(
            lambda: contexts(False))),
        ("check_loss_value", per_call(lambda: checks.check_loss_value(loss))),
        ("loss / group size (none for a group of one), and its backward", per_call(
            lambda: share(trainer.accumulate)) - per_call(lambda: (param * 1).backward())),
        ("scaler.scale (no scaler)", per_call(lambda: trainer.scaler.scale(loss))),
        ("optimizer update beyond step + zero_grad", per_call(
            lambda: trainer.optimizer_step(1)) - per_call(lambda: (
                trainer.optimizer.step(), trainer.optimizer.zero_grad(set_to_none=True)))),
        ("running loss beyond the hand loop's sum", per_call(
            lambda: trainer.running_loss.add(loss, 32)) - per_call(
            lambda: total.add_(loss.detach() * 32))),
        ("metric update (non-finite count) beyond the hand loop's matrix", per_call(
            lambda: metric.update(logits.detach(), y)) - per_call(
            lambda: cm.add_(confusion_matrix(logits.detach(), y, classes)))),
        ("batch logs: running mean in a dict, if a callback reads them", per_call(
            lambda: callbacks.listens("on_train_batch_end")
            and {"loss": trainer.running_loss.mean()})),
        ("callbacks.on_train_batch_end, checkpoint queue", per_call(lambda: (
            callbacks.on_train_batch_end(1, {"loss": loss}),
            trainer.checkpoint_queue.write(complete=False)))),
        ("interrupt check, stop_training", per_call(stop_checks)),
    ]  # fmt: skip
    trainer._input_checks.restore()
    return rows


def epoch_rows(trainer, loader, fit_options) -> list[tuple[str, float]]:
    """What runs once per epoch and once per ``fit``, as µs per mini-batch of the epoch."""
    model, callbacks, n = trainer.model, trainer.callbacks, len(loader)

    def epoch_start():
        distributed.set_epoch(loader, 0)
        trainer.train_model.train()
        resume.epoch_batches(trainer)

    def epoch_hooks():
        callbacks.on_epoch_begin(0)
        callbacks.on_epoch_end(0, {"loss": 1.0})

    def fit_setup():
        user_callbacks = fit_options.get("callbacks", [])
        verbose = fit_options["verbose"]
        checks.check_fit_args(loader, 1, 0, None, 1, verbose)
        trainer._set_up_fit(loader, None, user_callbacks, verbose)
        trainer.state.start_fit(1, len(loader))
        trainer.callbacks.on_train_begin()
        with fitting(trainer):
            pass
        trainer.callbacks.on_train_end({})

    trainer.train_loader = loader
    resume.epoch_batches(trainer)
    trainer.running_loss.add(torch.ones(()), 1)

    def epoch_end():
        logs = trainer._epoch_logs(trainer.running_loss, trainer.metrics)
        trainer.state.check_divergence(logs["loss"], model.parameters())

    rows = [
        ("epoch start: zero_grad, reset sums, RNG state", per_call(epoch_start, 200) / n),
        (
            "epoch end: logs (one host read), results, finite check",
            per_call(epoch_end, 200) / n,
        ),
        ("epoch hooks: on_epoch_begin, on_epoch_end", per_call(epoch_hooks, 20) / n),
        ("fit: checks, CallbackList, on_train_begin/end, SIGINT", per_call(fit_setup, 50) / n),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callbacks", action="store_true", help="the realistic callback set")
    parser.add_argument("--pairs", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    trainer, model, optimizer, loader, classes = tiny_case()
    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as devnull:
        fit_options = {"verbose": 0}
        if args.callbacks:
            fit_options = {"verbose": 1, "callbacks": realistic_callbacks(folder)}
        with contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
            hand, trained = gap(trainer, model, optimizer, loader, classes, fit_options,
                                args.pairs)  # fmt: skip
            rows = batch_rows(trainer, loader, classes) + epoch_rows(trainer, loader, fit_options)
    rows = [("hand-written loop", hand), ("Trainer", trained),
            ("gap (measured, whole epochs)", trained - hand), None, *rows, None,
            ("sum of the pieces", sum(us for _, us in rows))]  # fmt: skip
    width = max(len(row[0]) for row in rows if row) + 2
    print(f"{'per mini-batch':<{width}}{'µs':>8}")
    for row in rows:
        print("-" * (width + 8) if row is None else f"{row[0]:<{width}}{row[1]:8.1f}")


if __name__ == "__main__":
    main()

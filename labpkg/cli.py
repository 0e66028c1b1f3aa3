"""Command line: ``python -m labpkg train --epochs 5 --batch-size 32``.

Trains the U-Net on synthetic shapes as the ``labpkg.Recipe`` the options describe
(``recipe_of``; ``build_recipe`` builds it), prints the iteration accounting first (the book's
arithmetic for this run), then writes into ``--out``: ``best.pt`` (the epoch with the best
validation mean IoU), ``last.pt`` (the last finished epoch) and ``history.png``.

Ctrl-C, or SIGTERM (what ``kill``, job schedulers and Colab send), stops training at the end
of the current mini-batch; the outputs are written as after a finished run, and ``last.pt``
holds the last finished epoch. ``--resume OUT/last.pt`` with the same options continues from
there. Every argument is checked before training starts.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from labpkg.callbacks import ModelCheckpoint
from labpkg.core import counting, distributed
from labpkg.core.checks import as_int, check_lr
from labpkg.core.devices import describe_device, pick_device
from labpkg.loop.interrupts import TerminateAsInterrupt
from labpkg.nn.models import count_parameters
from labpkg.nn.optim import OPTIMIZERS
from labpkg.recipes import Recipe, build_recipe

__all__ = ["main", "build_parser"]

#: the exit status of a run stopped by Ctrl-C, as the shell reports a process ended by SIGINT
INTERRUPTED = 128 + signal.SIGINT

#: seeds 0 to 2**32 - 1 (NumPy's range): the data seeds multiply it, within torch's 64 bits
SEEDS = 2**32

#: the checkpoints written into --out
FILES = ("best.pt", "last.pt")

EPILOG = """\
outputs in --out: best.pt (best validation mean IoU), last.pt (last finished epoch) and
history.png. Ctrl-C or SIGTERM stops at the end of the current mini-batch and still writes
them; continue with --resume OUT/last.pt and the same options (--epochs counts the whole run).
"""


def _positive_int(text: str) -> int:
    """An argparse type: ``as_int``'s rule, said in argparse's way ("--epochs: must be ...")."""
    try:
        return as_int(int(text), "value", 1)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}") from err


def _lr(text: str) -> float:
    """An argparse type: ``check_lr``'s rule (0 too, as torch.optim allows), argparse's way."""
    try:
        return check_lr(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}") from err


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < SEEDS:
        raise argparse.ArgumentTypeError(
            f"must be an integer from 0 to {SEEDS - 1} (2**32 - 1), got {value}"
        )
    return value


def _device(text: str) -> str:
    try:
        pick_device(text)
    except RuntimeError as err:  # torch.device() does not know the name
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}: use cpu, cuda, cuda:1, mps, or leave --device out "
            "for the best available"
        ) from err
    except ValueError as err:  # a known kind this machine does not have
        raise argparse.ArgumentTypeError(
            f"{text!r} is not available here: leave --device out for the best available"
        ) from err
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labpkg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the U-Net on synthetic shapes", epilog=EPILOG)
    train.add_argument("--epochs", type=_positive_int, default=5)
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--samples", type=_positive_int, default=1000, help="training samples")
    train.add_argument("--val-samples", type=_positive_int, default=200)
    train.add_argument("--image-size", type=_positive_int, default=64)
    train.add_argument("--difficulty", choices=["easy", "medium", "hard"], default="medium")
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    train.add_argument("--lr", type=_lr, default=3e-3)
    train.add_argument("--base-width", type=_positive_int, default=16)
    train.add_argument("--accumulate", type=_positive_int, default=1)
    train.add_argument("--drop-last", action="store_true")
    train.add_argument("--amp", action="store_true", help="mixed precision (bf16 on CPU)")
    train.add_argument("--channels-last", action="store_true")
    train.add_argument("--device", type=_device, help="cpu, cuda, mps (default: best available)")
    train.add_argument("--seed", type=_seed, default=0, help="0 to 2**32 - 1 (default 0)")
    train.add_argument(
        "--out",
        type=Path,
        default=Path("runs/latest"),
        help="output folder; option names in braces are filled in before training, "
        "e.g. runs/lr{lr}_bs{batch_size} (default runs/latest)",
    )
    train.add_argument(
        "--resume",
        type=Path,
        metavar="PATH",
        help="continue the run whose checkpoint this is (e.g. runs/latest/last.pt); the "
        "other options must be the ones that run had, or it is refused",
    )
    train.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1)
    return parser


def fill_in_out(args: argparse.Namespace) -> Path:
    """``--out`` with the option names in braces replaced by their values.

    Args:
        args: the parsed arguments; ``args.out`` may hold ``{lr}``, ``{batch_size}``, ...

    Returns:
        The folder, e.g. ``runs/lr0.01_bs4`` for ``runs/lr{lr}_bs{batch_size}``.

    Raises:
        ValueError: for a name that is not an option, or a brace left over, which the
            checkpoint file names (templates themselves) would read as a field.
    """
    template = str(args.out)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "out")}
    try:
        out = template.format(**options)
    except KeyError as err:
        raise ValueError(
            f"{{{err.args[0]}}} is not an option name; braces in --out are filled in once, "
            f"before training, from the options (e.g. runs/lr{{lr}}_bs{{batch_size}}): "
            f"{', '.join(sorted(options))}"
        ) from err
    except (ValueError, AttributeError, IndexError, TypeError) as err:
        raise ValueError(f"cannot fill in {template!r}: {err}") from err
    if "{" in out or "}" in out:
        raise ValueError(
            f"a brace is left in {out!r} after filling in the option names; name the folder "
            "without braces"
        )
    return Path(out)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse's types cannot judge alone, refused before anything is built."""
    if args.image_size % 8:
        parser.error(f"--image-size must be a multiple of 8 for the U-Net, got {args.image_size}")
    try:
        args.out = fill_in_out(args)
    except ValueError as err:
        parser.error(f"--out: {err}")
    if args.resume is not None and not args.resume.is_file():
        parser.error(
            f"--resume: no checkpoint file at {args.resume}; pass the last.pt (or best.pt) "
            "that an earlier run wrote into its --out folder"
        )


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


def recipe_of(args: argparse.Namespace) -> Recipe:
    """The ``Recipe`` the options describe. Unlike ``Recipe()``'s defaults, the command line
    trains at a constant ``--lr`` without weight decay, on the same scenes every epoch, with
    mixed precision and channels_last only if asked."""
    return Recipe(
        difficulty=args.difficulty, image_size=args.image_size, samples_per_epoch=args.samples,
        val_samples=args.val_samples, base_width=args.base_width, batch_size=args.batch_size,
        optimizer=args.optimizer, peak_lr=args.lr, weight_decay=0.0, decay_norm_and_bias=True,
        epochs=args.epochs, amp=args.amp, channels_last=args.channels_last, fresh_data=False,
        accumulate_grad_batches=args.accumulate, drop_last=args.drop_last, schedule="constant",
    )  # fmt: skip


def checkpoints(out: Path) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """``best.pt`` (best validation mean IoU) and ``last.pt`` (every finished epoch)."""
    best_file, last_file = (str(out / name) for name in FILES)
    best = ModelCheckpoint(best_file, monitor="val_mean_iou", save_best_only=True)
    last = ModelCheckpoint(last_file)
    # named apart from --out, so a run resumed into another folder still finds their state
    best.key, last.key = "best", "last"
    return best, last


def train(args: argparse.Namespace) -> int:
    """Train as the checked ``args`` say, write the outputs; returns the exit status."""
    # under torchrun every process trains on its share; --batch-size is per process
    device = distributed.init_from_env(device=args.device) or pick_device(args.device)
    run = build_recipe(recipe_of(args), seed=args.seed, device=device)
    trainer = run.trainer
    if distributed.rank() == 0:
        print(accounting(args, distributed.world_size()))
        print(f"device                {describe_device(device)}")
        print(f"model parameters      {count_parameters(trainer.model):,}")
    best, last = checkpoints(args.out)
    history = trainer.fit(
        run.train_loader, args.epochs, run.val_loader, callbacks=[best, last], verbose=args.verbose,
        resume_from=None if args.resume is None else str(args.resume),
    )  # fmt: skip
    if distributed.rank() == 0:
        report(history, best, args.out)
    if trainer.state.interrupted:
        return INTERRUPTED
    if trainer.state.diverged:
        print("training diverged (NaN/inf loss or weights): lower --lr", file=sys.stderr)
        return 1
    return 0


def report(history, best: ModelCheckpoint, out: Path) -> None:
    """Print the history and where the outputs are; plot it, if an epoch finished."""
    print(history.table())
    # the files, not this run's saves: a resumed run may not have written them yet
    shown = {name: out / name if (out / name).is_file() else "none yet" for name in FILES}
    print(f"best checkpoint: {shown['best.pt']} (val_mean_iou={best.best})")
    print(f"last checkpoint: {shown['last.pt']}")
    if not history.epoch:  # stopped in its first epoch: an earlier run's plot stays
        print("history plot:    not drawn (no epoch finished)")
        return
    history.plot().savefig(out / "history.png", dpi=100)
    print(f"history plot:    {out / 'history.png'}")


def write_failure(err: OSError, out: Path) -> str:
    """One line for a failed write (a full disk, say): where, why, and what is kept."""
    kept = [name for name in (*FILES, "history.png") if (out / name).is_file()]
    line = (
        f"--out {out}: writing {err.filename or 'into it'} failed: {err.strerror}; "
        f"kept {', '.join(kept) or 'nothing'} as written before (checkpoints are replaced "
        "whole or not at all)"
    )
    if "last.pt" in kept:
        line += f"; once that is fixed, continue with --resume {out / 'last.pt'}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    0 done, 1 diverged or an output could not be written, 2 refused (argparse exits with
    2 itself), 130 stopped by Ctrl-C, 143 by SIGTERM.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    # SIGTERM (kill, job schedulers, Colab) stops training as Ctrl-C does, between mini-batches
    with TerminateAsInterrupt() as terminate:
        try:
            status = train(args)
        except ValueError as err:  # bad combinations that only the library can judge
            print(f"error: {err}", file=sys.stderr)
            return 2
        except OSError as err:
            print(f"error: {write_failure(err, args.out)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # outside training, or a second Ctrl-C: stopped at once
            print("error: interrupted; files written before are kept", file=sys.stderr)
            status = INTERRUPTED
    if status == INTERRUPTED and terminate.received is not None:
        return 128 + terminate.received
    return status


if __name__ == "__main__":
    sys.exit(main())

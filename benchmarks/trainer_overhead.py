"""Trainer vs a hand-written loop on the same model and data: how much does the Trainer cost?

Run: .venv/bin/python benchmarks/trainer_overhead.py [--pairs 61]
Goals: <= 1.02x on a tiny 2-conv model at 16x16 (overhead-bound), <= 1.01x on the default
U-Net at 64x64, batch 32, and <= 1.03x on the tiny model with a realistic set of callbacks
(History, ModelCheckpoint every epoch, EarlyStopping, the progress bar). Both loops do the
same work: forward, loss, backward, step, and a dataset-level confusion matrix on the device;
with the callbacks, the hand loop also draws a bar, saves a checkpoint and checks for early
stopping each epoch (and, on the lines that say so, does not). Each ratio is the median of
paired, interleaved runs (one epoch each; the callbacks case mostly in fits of 5 epochs, as
a run with EarlyStopping has). The pairs are many because the goals are narrow: with 21 pairs
the tiny ratio moved by ±1% from run to run here (1.006 to 1.026), and with 20 the first
callbacks line printed 1.036 to 1.050 where 80 pairs gave 1.021; with 121 pairs the tiny
ratio printed 1.009. ``trainer_profile.py`` breaks the gap down.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile

import torch
from _timing import paired_ratio
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

import labpkg
from labpkg.nn.metrics import confusion_matrix


def hand_loop(model, optimizer, loader, classes):
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    cm = torch.zeros(classes, classes, dtype=torch.long)
    total = torch.zeros(())
    for x, y in loader:
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(y)
        cm += confusion_matrix(logits.detach(), y, classes)
    return float(total), cm


def make_case(make_model, n, size, batch, classes):
    """A Trainer, and the same model, optimizer and data for the hand loop."""
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.rand(n, 3, size, size, generator=gen),
        torch.randint(0, classes, (n, size, size), generator=gen),
    )
    loader = DataLoader(data, batch_size=batch)
    model_a, model_b = make_model(), make_model()
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.01)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.01)
    trainer = labpkg.Trainer(
        model_b,
        opt_b,
        nn.CrossEntropyLoss(),
        device="cpu",
        metrics=[labpkg.SegmentationMetrics(classes)],
    )
    return trainer, model_a, opt_a, loader, classes


def tiny_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))


def tiny_case():
    return make_case(tiny_model, n=2048, size=16, batch=32, classes=4)


def realistic_callbacks(folder: str) -> list[labpkg.Callback]:
    """What a run typically has besides History and the progress bar (verbose=1)."""
    return [
        labpkg.ModelCheckpoint(os.path.join(folder, "last.pt"), monitor="loss"),
        labpkg.EarlyStopping(monitor="loss", patience=5),
    ]


def run(name, case, pairs, epochs=1, by_hand=hand_loop, **fit_options) -> str:
    """One line: the median times per epoch of both loops and the median of the paired ratios
    (each pair: ``epochs`` epochs of ``by_hand``, one ``fit`` of ``epochs`` epochs)."""
    trainer, model, optimizer, loader, classes = case

    def hand():
        for _ in range(epochs):
            by_hand(model, optimizer, loader, classes)

    ratio, ta, tb = paired_ratio(
        hand, lambda: trainer.fit(loader, epochs=epochs, **fit_options), pairs=pairs
    )
    ta, tb = ta / epochs, tb / epochs
    return f"{name:<46} hand {ta * 1000:6.1f} ms  trainer {tb * 1000:6.1f} ms  ratio {ratio:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=61, help="pairs for the tiny cases")
    parser.add_argument("--unet-pairs", type=int, default=15)
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    args = parser.parse_args()
    torch.set_num_threads(1)  # 1 thread is steady on this machine; ratios are what count
    if "tiny" in args.cases:
        print(run("tiny 2-conv, 16x16, b=32", tiny_case(), args.pairs, verbose=0), flush=True)
    if "unet" in args.cases:
        unet = make_case(labpkg.UNet, n=256, size=64, batch=32, classes=4)
        print(run("U-Net 0.48M, 64x64, b=32", unet, args.unet_pairs, verbose=0), flush=True)
    if "callbacks" in args.cases:
        print("tiny, 2-conv, 16x16, b=32:")
        for line in callbacks_case(args.pairs):
            print(line, flush=True)


def callbacks_case(pairs: int) -> list[str]:
    """The tiny case with the realistic callbacks: against a hand loop that does what they do,
    in fits of 5 epochs (a run with EarlyStopping has several: a checkpoint is finished while
    the next epoch trains, and the fit's setup is paid once); then against the bare hand
    loop, which shows the whole cost of a bar and a file each epoch, also in fits of one
    epoch, where each epoch pays for the fit's setup and waits for its file."""
    lines = []
    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as devnull:
        callbacks, featured = realistic_callbacks(folder), HandFeatures(folder)
        options = {"verbose": 1, "callbacks": callbacks}
        with contextlib.redirect_stdout(devnull):  # the progress bars write to sys.stdout
            for epochs, by_hand, against in [(5, featured, "a hand loop with them"),
                                             (5, hand_loop, "the bare hand loop"),
                                             (1, hand_loop, "the bare hand loop")]:  # fmt: skip
                name = f"+ callbacks vs {against}, {epochs} ep/fit"
                lines.append(run(name, tiny_case(), pairs, epochs, by_hand, **options))
    return lines


class HandFeatures:
    """``hand_loop`` with what the realistic callbacks do, as a tutorial writes it: a tqdm bar
    per epoch with the loss, the model and optimizer saved each epoch (PyTorch's recipe for
    a general checkpoint: ``torch.save`` of a dict), and early stopping on the loss."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "hand.pt")
        self.best, self.wait, self.epoch = math.inf, 0, 0

    def __call__(self, model, optimizer, loader, classes):
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", unit="batch", file=sys.stdout)
        total, cm = hand_loop(model, optimizer, bar, classes)
        loss = total / len(loader.dataset)
        bar.set_postfix_str(f"loss={loss:.4f}")
        bar.close()
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        torch.save({**state, "epoch": self.epoch, "loss": loss}, self.path)
        # EarlyStopping's bookkeeping; with patience 5, a fit of 5 epochs never stops
        self.best, self.wait = (loss, 0) if loss < self.best else (self.best, self.wait + 1)
        self.epoch += 1


CASES = ["tiny", "unet", "callbacks"]

if __name__ == "__main__":
    main()

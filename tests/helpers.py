"""Small models, data and a recording callback shared by the training tests."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labpkg


def tiny_data(n: int = 24, size: int = 8, classes: int = 3, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=gen)
    y = torch.randint(0, classes, (n, size, size), generator=gen)
    return TensorDataset(x, y)


def tiny_model(classes: int = 3, seed: int = 0, batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return labpkg.UNet(
        labpkg.UNetConfig(num_classes=classes, base_width=4, depth=2, batch_norm=batch_norm)
    )


def tiny_trainer(model: nn.Module | None = None, lr: float = 0.1, **kwargs) -> labpkg.Trainer:
    model = model or tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return labpkg.Trainer(model, opt, nn.CrossEntropyLoss(), device="cpu", **kwargs)


def loader(dataset, batch_size: int = 4, shuffle: bool = False, **kwargs) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)


def run_python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """This interpreter in a subprocess, started outside the checkout.

    ``python -c`` and ``python -m`` put the working directory first on ``sys.path``: started
    from the repository they would import ./labpkg, not the installed package under test.
    """
    kwargs.setdefault("cwd", tempfile.gettempdir())
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, **kwargs)


class Event(NamedTuple):
    """One hook call and the counters the trainer held at that moment."""

    hook: str
    epoch: int | None  # the epoch in progress (None at train begin and end)
    batch: int | None  # the hook's mini-batch index (training or test), else None
    global_step: int
    batches_seen: int
    samples_seen: int


class Recorder(labpkg.Callback):
    """Records every hook as an ``Event`` (ignite's RecordedEngine, for callbacks)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def _note(self, hook: str, batch: int | None = None, epoch: bool = True) -> None:
        s = self.trainer.state
        at = s.epoch if epoch else None
        self.events.append(Event(hook, at, batch, s.global_step, s.batches_seen, s.samples_seen))

    def on_train_begin(self, logs=None):
        self._note("train_begin", epoch=False)

    def on_train_end(self, logs=None):
        self._note("train_end", epoch=False)

    def on_epoch_begin(self, epoch, logs=None):
        self._note("epoch_begin")

    def on_epoch_end(self, epoch, logs=None):
        self._note("epoch_end")

    def on_train_batch_begin(self, batch, logs=None):
        self._note("batch_begin", batch)

    def on_train_batch_end(self, batch, logs=None):
        self._note("batch_end", batch)

    def on_test_begin(self, logs=None):
        self._note("test_begin")

    def on_test_end(self, logs=None):
        self._note("test_end")

    def on_test_batch_begin(self, batch, logs=None):
        self._note("test_batch_begin", batch)

    def on_test_batch_end(self, batch, logs=None):
        self._note("test_batch_end", batch)

    def hooks(self) -> list[str]:
        return [e.hook for e in self.events]

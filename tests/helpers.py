"""Small models, data and a recording callback shared by the training tests."""

from __future__ import annotations

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


class Recorder(labpkg.Callback):
    """Records every hook with the counters the trainer holds at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple] = []

    def _note(self, hook: str, index: int | None = None) -> None:
        s = self.trainer.state
        self.events.append((hook, index, s.epoch, s.global_step, s.epoch_length))

    def on_train_begin(self, logs=None):
        self._note("train_begin")

    def on_train_end(self, logs=None):
        self._note("train_end")

    def on_epoch_begin(self, epoch, logs=None):
        self._note("epoch_begin", epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._note("epoch_end", epoch)

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
        return [e[0] for e in self.events]

"""Trainer vs a hand-written loop on the same model and data: how much does the Trainer cost?

Run: .venv/bin/python benchmarks/trainer_overhead.py
Goals: <= 1.05x on a tiny 2-conv model at 16x16 (overhead-bound), <= 1.02x on the default
U-Net at 64x64, batch 32. Both loops do the same work: forward, loss, backward, step, and a
dataset-level confusion matrix on the device.
"""

from __future__ import annotations

import torch
from _timing import paired_ratio
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labpkg
from labpkg.metrics import confusion_matrix


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


def case(name, make_model, n, size, batch, classes, pairs):
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
    ratio, ta, tb = paired_ratio(
        lambda: hand_loop(model_a, opt_a, loader, classes),
        lambda: trainer.fit(loader, epochs=1, verbose=0),
        pairs=pairs,
    )
    print(f"{name:<28} hand {ta * 1000:8.1f} ms  trainer {tb * 1000:8.1f} ms  ratio {ratio:.3f}")


def main():
    torch.set_num_threads(1)  # 1 thread is steady on this machine; ratios are what count
    tiny = lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))  # noqa: E731
    case("tiny 2-conv, 16x16, b=32", tiny, n=2048, size=16, batch=32, classes=4, pairs=9)
    case("U-Net 0.48M, 64x64, b=32", labpkg.UNet, n=256, size=64, batch=32, classes=4, pairs=5)


if __name__ == "__main__":
    main()

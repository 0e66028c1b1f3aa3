"""bf16 autocast + channels_last vs fp32 on the CPU: U-Net train step time (ratio < 1 is faster).

Run: .venv/bin/python benchmarks/amp_channels_last.py
"""

from __future__ import annotations

import torch
from _timing import paired_ratio
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import labpkg


def make_trainer(**options):
    torch.manual_seed(0)
    model = labpkg.UNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return labpkg.Trainer(model, opt, nn.CrossEntropyLoss(), device="cpu", **options)


def main():
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.rand(128, 3, 64, 64, generator=gen), torch.randint(0, 4, (128, 64, 64), generator=gen)
    )
    loader = DataLoader(data, batch_size=32)
    fp32 = make_trainer()
    for name, options in [
        ("bf16 autocast", {"amp": True}),
        ("channels_last", {"channels_last": True}),
        ("bf16 + channels_last", {"amp": True, "channels_last": True}),
    ]:
        other = make_trainer(**options)
        ratio, ta, tb = paired_ratio(
            lambda: fp32.fit(loader, verbose=0),
            lambda trainer=other: trainer.fit(loader, verbose=0),
            pairs=5,
        )
        steps = len(loader)
        print(
            f"{name:<22} fp32 {ta / steps * 1000:6.1f} ms/step  "
            f"{tb / steps * 1000:6.1f} ms/step  ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()

"""A small, readable U-Net for segmentation.

The encoder halves the resolution and doubles the channels at each level; the decoder goes back
up and concatenates the encoder's features at the same resolution (the "skip connections"), so
the output can be sharp at object edges. One score per class per pixel comes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from labpkg.core.checks import as_int

__all__ = ["UNetConfig", "UNet", "DoubleConv", "Down", "Up", "count_parameters"]


@dataclass(frozen=True)
class UNetConfig:
    """U-Net size.

    Args:
        in_channels: image channels (default 3, RGB).
        num_classes: output classes, background included (default 4).
        base_width: channels at the first level; each level below doubles it (default 16).
        depth: number of resolution levels, 2 or more (default 4: 64→32→16→8 pixels for 64²).
        batch_norm: BatchNorm after each convolution (default True).

    Example:
        >>> UNetConfig(depth=2, base_width=4)  # a tiny U-Net for tests: 4 and 8 channels
        UNetConfig(in_channels=3, num_classes=4, base_width=4, depth=2, batch_norm=True)
        >>> UNetConfig(depth=1)
        Traceback (most recent call last):
        ...
        ValueError: depth (levels) must be an integer >= 2, got 1
    """

    in_channels: int = 3
    num_classes: int = 4
    base_width: int = 16
    depth: int = 4
    batch_norm: bool = True

    def __post_init__(self) -> None:
        for name in ("in_channels", "base_width"):
            as_int(getattr(self, name), name, 1)
        as_int(self.num_classes, "num_classes (background + 1 or more)", 2)
        as_int(self.depth, "depth (levels)", 2)


class DoubleConv(nn.Sequential):
    """Two 3×3 convolutions, each followed by (BatchNorm and) ReLU. Keeps H and W."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            # no conv bias before BatchNorm: the norm's own shift makes it redundant
            layers.append(nn.Conv2d(c_in, out_ch, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Sequential):
    """2×2 max-pool, then ``DoubleConv``: (B, C, H, W) → (B, C', H/2, W/2)."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = True) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch, batch_norm))


class Up(nn.Module):
    """Double the resolution, concatenate the skip features, then ``DoubleConv``."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_ch, out_ch, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, C/2, 2h, 2w)
        x = torch.cat([skip, x], dim=1)  # (B, C, 2h, 2w): skip features first
        return self.conv(x)  # (B, C/2, 2h, 2w)


class UNet(nn.Module):
    """U-Net: ``depth`` levels down, the same levels back up, a 1×1 convolution to class scores.

    Input height and width must be divisible by ``2 ** (depth - 1)``.

    Args:
        config: a ``UNetConfig`` (default: about 0.48 M parameters).

    Example:
        >>> model = UNet(UNetConfig(base_width=4, depth=2, num_classes=3))
        >>> tuple(model(torch.zeros(2, 3, 16, 16)).shape)
        (2, 3, 16, 16)
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or UNetConfig()
        widths = [cfg.base_width * 2**level for level in range(cfg.depth)]  # e.g. 16, 32, 64, 128
        self.stem = DoubleConv(cfg.in_channels, widths[0], cfg.batch_norm)
        self.downs = nn.ModuleList(
            Down(w_in, w_out, cfg.batch_norm)
            for w_in, w_out in zip(widths, widths[1:], strict=False)
        )
        self.ups = nn.ModuleList(
            Up(w_in, w_out, cfg.batch_norm)
            for w_in, w_out in zip(widths[::-1], widths[::-1][1:], strict=False)
        )
        self.head = nn.Conv2d(widths[0], cfg.num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        skips = [self.stem(x)]  # (B, w0, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))  # (B, w_l, H/2^l, W/2^l)
        x = skips.pop()  # the bottom of the U
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)  # (B, num_classes, H, W): raw scores (logits)

    def _check_input(self, x: torch.Tensor) -> None:
        factor = 2 ** (self.config.depth - 1)
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"UNet expects input of shape (B, {self.config.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"UNet with depth={self.config.depth} needs H and W divisible by {factor}, "
                f"got {tuple(x.shape[-2:])}; resize or crop the images"
            )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Example:
        >>> count_parameters(nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

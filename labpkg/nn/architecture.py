"""Look inside a U-Net: the shape at every level and the receptive field.

``layer_shapes`` runs one forward pass with hooks and records what each block outputs, so the
table a chapter prints is the real model's, not a description of it; ``labpkg.viz.draw_unet``
draws that table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from labpkg.nn.models import UNet, UNetConfig, count_parameters

__all__ = ["LayerShape", "input_reach", "layer_shapes", "receptive_field"]


@dataclass(frozen=True)
class LayerShape:
    """One block of a U-Net and what it outputs for one input image.

    Attributes:
        name: the module's name in the model, e.g. ``"downs.0"``.
        part: ``"encoder"``, ``"bottom"``, ``"decoder"`` or ``"head"``.
        level: resolution level, 0 at full size (the image is halved ``level`` times).
        shape: output shape (B, C, H, W).
        parameters: trainable parameters of the block.
    """

    name: str
    part: str
    level: int
    shape: tuple[int, ...]
    parameters: int


def layer_shapes(model: UNet, image_size: int = 64, batch: int = 1) -> list[LayerShape]:
    """The output shape of every block of ``model`` for a batch of square RGB images.

    Args:
        model: a ``labpkg.UNet``.
        image_size: height and width of the input (divisible by 2 ** (depth - 1)).
        batch: images in the batch (the B of every shape).

    Returns:
        One ``LayerShape`` per block, in the order the forward pass runs them: the stem, each
        ``Down`` (the last is the bottom of the U), each ``Up``, the head.

    Example:
        >>> rows = layer_shapes(UNet(UNetConfig(base_width=4, depth=2)), image_size=16)
        >>> [r.shape for r in rows]
        [(1, 4, 16, 16), (1, 8, 8, 8), (1, 4, 16, 16), (1, 4, 16, 16)]
    """
    depth = model.config.depth
    blocks = [("stem", model.stem, "encoder", 0)]
    blocks += [
        (f"downs.{i}", m, "bottom" if i == depth - 2 else "encoder", i + 1)
        for i, m in enumerate(model.downs)
    ]
    blocks += [(f"ups.{i}", m, "decoder", depth - 2 - i) for i, m in enumerate(model.ups)]
    blocks.append(("head", model.head, "head", 0))
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _in, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name, module, _, _ in blocks
    ]
    was_training = model.training
    try:
        model.eval()  # no BatchNorm statistics are updated by this look
        device = next(model.parameters()).device
        with torch.no_grad():
            model(
                torch.zeros(batch, model.config.in_channels, image_size, image_size, device=device)
            )
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return [
        LayerShape(name, part, level, shapes[name], count_parameters(module))
        for name, module, part, level in blocks
    ]


def receptive_field(config: UNetConfig) -> int:
    """Width in pixels of the input window one output pixel can see, measured.

    The width at the centre of an image wide enough for the whole window (``input_reach``).
    (The textbook recurrence, +2 strides per 3×3 convolution and +1 per pool, gives an upper
    bound: pooling and upsampling do not line up for every pixel.)

    Example:
        >>> receptive_field(UNetConfig(depth=2))
        18
    """
    size = 2 ** (config.depth - 1) * 16  # wide enough for the levels' windows (2^depth · 8)
    first, last = input_reach(config, size)[size // 2]
    return last - first + 1


def input_reach(config: UNetConfig, image_size: int) -> list[tuple[int, int]]:
    """For each output column of an image's middle row: the first and last input column
    (of that row) that can change it.

    A copy of the architecture (one channel per level: the width does not change what a pixel
    sees) gets positive weights and no biases, so a blank image gives exactly 0, no effect
    cancels and every ReLU passes; image k of a batch has pixel (middle, k) set, and the
    outputs it reaches are the ones that are not 0. Near the edges the window is cut off by
    the image, and where pooling lines up differently it shifts by a pixel.

    Args:
        config: the U-Net's configuration.
        image_size: height and width of the (square) input, a multiple of 2^(depth − 1).

    Returns:
        ``[(first, last), ...]``, one pair per output column.

    Example:
        >>> reach = input_reach(UNetConfig(depth=2), 16)
        >>> reach[0], reach[8]  # the left edge sees less: the image ends there
        ((0, 9), (0, 15))
    """
    probe = replace(config, in_channels=1, num_classes=2, base_width=1)
    net = UNet(probe).double().eval()
    middle, columns = image_size // 2, torch.arange(image_size)
    with torch.no_grad():
        for name, p in net.named_parameters():  # no bias: a blank image gives exactly 0
            p.fill_(0.0 if name.endswith("bias") else 0.5)
        images = torch.zeros(image_size, 1, image_size, image_size, dtype=torch.float64)
        images[columns, 0, middle, columns] = 1.0  # image k: pixel (middle, k) set
        felt = net(images)[:, 0, middle, :] > 0  # (input column k, output column c)
    return [(int(k.min()), int(k.max())) for k in (felt[:, c].nonzero() for c in columns)]

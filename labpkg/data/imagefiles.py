"""Reading one image file or one mask file into a tensor, whatever the file's mode.

Pillow opens a file in a *mode* that says what each pixel holds: ``"RGB"`` (3 × 8 bits), ``"L"``
(8-bit grey), ``"P"`` (8-bit palette index), ``"1"`` (1 bit), ``"I;16"`` (16-bit grey, e.g.
microscopy and medical PNGs). An image becomes floats in [0, 1] by dividing by the largest
value its *bit depth* can hold (255 for 8 bits, 65535 for 16), never by 255 alone: a 16-bit
image divided by 255 would read almost every pixel as 1.0. A mask keeps its stored numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["MASK_MODES", "read_image", "read_mask"]

#: Pillow modes whose pixels are one number each (bit 0/1, 8-bit grey, palette, 16- or 32-bit)
MASK_MODES = ("1", "L", "P", "I;16", "I;16B", "I;16L", "I")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L")


def _decoded(path: Path):
    """The file's pixels, decoded; a damaged or unreadable file is an OSError that names it."""
    from PIL import Image  # pillow comes with matplotlib

    try:
        with Image.open(path) as file:
            file.load()  # decode now: a truncated file fails here, with its name
    except OSError as err:  # Pillow's UnidentifiedImageError and "truncated" are OSErrors
        raise OSError(
            f"{path.name} cannot be read ({err}): the file is damaged or not an image; "
            f"export it again or remove it (full path: {path})"
        ) from err
    return file  # closed, but its pixels are loaded


def read_image(path: Path) -> torch.Tensor:
    """An image file as float32 (3, H, W) in [0, 1], scaled by its bit depth.

    8-bit files (RGB, grey, palette, with or without alpha) are divided by 255; 16-bit grey
    files by 65535. Grey becomes three equal channels.

    Args:
        path: a PNG or JPEG file.

    Returns:
        float32 (3, H, W), values in [0, 1].
    """
    path = Path(path)
    file = _decoded(path)
    if file.mode in _SIXTEEN_BIT or (file.mode == "I" and file.format == "PNG"):
        # 16-bit grey (PNG holds at most 16 bits per channel, so its "I" is 16-bit too)
        grey = np.asarray(file, dtype=np.float32) / 65535.0  # (H, W)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)  # (H, W) -> (H, W, 3)
    elif file.mode in ("I", "F"):
        kind = "integer" if file.mode == "I" else "float"
        raise ValueError(
            f"{path.name} is a 32-bit {kind} image, whose range is unknown: save it as an "
            "8- or 16-bit PNG"
        )
    else:
        rgb = np.asarray(file.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()  # (H, W, 3) -> (3, H, W)


def read_mask(path: Path) -> torch.Tensor:
    """A mask PNG as int64 (H, W): the stored numbers.

    A palette ("P") image gives its palette indices, a 1-bit image 0 and 1.

    Args:
        path: a PNG file with one number per pixel (mode 1, L, P or 16-bit grey).

    Returns:
        int64 (H, W).
    """
    path = Path(path)
    file = _decoded(path)
    if file.mode not in MASK_MODES:
        raise ValueError(
            f"{path.name} is a {file.mode} image: a mask must hold one class number per "
            "pixel (mode 1, L, P or 16-bit grey); convert colours to class numbers first"
        )
    return torch.from_numpy(np.asarray(file, dtype=np.int64))  # mode "1": bools -> 0 and 1

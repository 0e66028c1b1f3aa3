"""Your own data: a folder of images and a folder of masks, matched by file name.

::

    images/cat_001.jpg     masks/cat_001.png     one label per pixel (a single-channel PNG)
    images/cat_002.png     masks/cat_002.png

Images may be PNG or JPEG, any size and colour mode; masks must be PNG (JPEG's compression
would change labels at edges) holding class numbers, not colours. Image and mask are resized
together, the mask with nearest-neighbour sampling so every pixel keeps a label that was there.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from labpkg.core.checks import as_int
from labpkg.data.imagefiles import read_image, read_mask

__all__ = [
    "IMAGE_SUFFIXES",
    "RandomFlipCrop",
    "SegmentationFolder",
    "jpeg_round_trip",
    "resize_pair",
    "save_pairs",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class SegmentationFolder(Dataset):
    """Images from ``images``, masks from ``masks``, paired by file stem.

    Args:
        images: folder of images (.png, .jpg, .jpeg; 8-bit, or 16-bit grey, each scaled to
            [0, 1] by its bit depth).
        masks: folder of masks, ``<stem>.png`` (or ``.PNG``) for each image.
        size: resize both to ``size`` × ``size`` (an int) or (height, width); None keeps the
            files' size (then every file must have the same size to be batched).
        mask_values: ``{value in the file: class}``, e.g. ``{0: 0, 255: 1}`` for masks saved
            as black and white 0/255, or the Pet trimaps' ``{1: 1, 2: 0, 3: 255}``; a value
            missing from the map is an error. None keeps the values.
        names: the stems to use (e.g. read from a split file); default every image found.
        transform: a joint augmentation ``(image, mask) -> (image, mask)``, such as
            ``RandomFlipCrop``, applied after resizing.

    Returns (per item):
        ``(image, mask)``: float32 (3, H, W) in [0, 1] and int64 (H, W).

    Example:
        >>> SegmentationFolder("no/such/folder", "masks")
        Traceback (most recent call last):
        ...
        FileNotFoundError: images folder no/such/folder does not exist
    """

    def __init__(
        self,
        images: str | Path,
        masks: str | Path,
        size: int | tuple[int, int] | None = 128,
        mask_values: Mapping[int, int] | None = None,
        names: Sequence[str] | None = None,
        transform: Callable | None = None,
    ) -> None:
        self.images, self.masks = Path(images), Path(masks)
        for role, folder in (("images", self.images), ("masks", self.masks)):
            if not folder.is_dir():
                raise FileNotFoundError(f"{role} folder {folder} does not exist")
        self.size = _check_size(size)  # bad sizes fail here, not at the first item
        self.mask_values = _check_mask_values(mask_values)
        self._lookup = _lookup_table(self.mask_values) if self.mask_values is not None else None
        self.transform = transform
        self.files = _pairs(self.images, self.masks, names)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_file, mask_file = self.files[index]
        image, mask = read_image(image_file), self._labels(read_mask(mask_file), mask_file)
        if image.shape[1:] != mask.shape:
            raise ValueError(
                f"{image_file.name} is {tuple(image.shape[1:])} but its mask is "
                f"{tuple(mask.shape)}: a mask must have its image's height and width"
            )
        if self.size is not None:
            image, mask = resize_pair(image, mask, self.size)
        return self.transform(image, mask) if self.transform else (image, mask)

    def _labels(self, raw: torch.Tensor, file: Path) -> torch.Tensor:
        if self._lookup is None:
            return raw
        # (H, W) -> (H, W): one gather; values past the table or unmapped come out as -1
        labels = self._lookup[raw.clamp(0, len(self._lookup) - 1)]
        labels[raw >= len(self._lookup)] = -1
        if (labels < 0).any():  # the slow, exact message only on the error path
            unknown = sorted(set(raw[labels < 0].unique().tolist()))
            raise ValueError(
                f"{file.name} holds values {unknown} that mask_values does not map; "
                f"add them to mask_values (it maps {sorted(self.mask_values)})"
            )
        return labels


def _check_size(size) -> tuple[int, int] | None:
    """``size`` as (height, width), each a whole number >= 1 (NumPy integers too), or None."""
    if size is None:
        return None
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    try:
        if len(pair) != 2:
            raise ValueError
        return as_int(pair[0], "height", 1), as_int(pair[1], "width", 1)
    except ValueError:
        raise ValueError(
            f"size must be an int >= 1 (a square), a pair (height, width) of them, or None "
            f"(keep each file's size); got {size!r}"
        ) from None


def _check_mask_values(mask_values) -> dict[int, int] | None:
    """``{stored value: class}`` with whole numbers >= 0 on both sides, or None."""
    if mask_values is None:
        return None
    if not isinstance(mask_values, Mapping) or not mask_values:
        raise ValueError(
            f"mask_values must map each value stored in the masks to its class, e.g. "
            f"{{0: 0, 255: 1}} for masks saved as 0/255, or be None (keep the stored values); "
            f"got {mask_values!r}"
        )
    try:
        return {as_int(k, "value", 0): as_int(v, "class", 0) for k, v in mask_values.items()}
    except ValueError:
        raise ValueError(
            f"mask_values maps stored values >= 0 to classes >= 0 (whole numbers), got "
            f"{mask_values}"
        ) from None


def _lookup_table(mask_values: dict[int, int]) -> torch.Tensor:
    """``table[stored value] = class``, -1 where a value is not mapped."""
    table = torch.full((max(mask_values) + 1,), -1, dtype=torch.int64)
    for value, label in mask_values.items():
        table[value] = label
    return table


def _pairs(images: Path, masks: Path, names: Sequence[str] | None) -> list[tuple[Path, Path]]:
    found = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    stems = list(names) if names is not None else sorted(found)
    missing_images = [s for s in stems if s not in found]
    # the extension in any case: IMG_0001.PNG, as cameras and Windows tools write it
    mask_files = {p.stem: p for p in sorted(masks.iterdir()) if p.suffix.lower() == ".png"}
    missing_masks = [s for s in stems if s in found and s not in mask_files]
    for what, where, missing in (("images", images, missing_images),
                                 ("masks (.png)", masks, missing_masks)):  # fmt: skip
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} {what} missing in {where}, e.g. {missing[:3]}: every image "
                "needs a mask with the same name, and names= must list existing images"
            )
    if not stems:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images}")
    return [(found[s], mask_files[s]) for s in stems]


def resize_pair(
    image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize an image (bilinear, antialiased) and its mask (nearest: labels stay labels).

    Example:
        >>> image, mask = resize_pair(torch.rand(3, 4, 4), torch.tensor([[0, 0, 1, 1]] * 4), (2, 2))
        >>> image.shape, mask.tolist()
        (torch.Size([3, 2, 2]), [[0, 1], [0, 1]])
    """
    image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                          align_corners=False)[0].clamp(0, 1)  # fmt: skip
    # nearest-exact: each output pixel copies one input pixel, so no in-between label appears
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0]
    return image, mask.long()


class RandomFlipCrop:
    """Joint augmentation: a random horizontal flip and a random crop, resized back.

    The same flip and the same crop box go to the image and its mask; the mask is resized with
    nearest-neighbour sampling, so its labels stay exact (no new values appear).

    Args:
        flip: probability of a horizontal flip.
        scale: the crop's side as a fraction of the image's, drawn uniformly from this range.
        generator: a ``torch.Generator`` for the draws (default: torch's global one, which
            ``labpkg.seed_everything`` seeds, and each DataLoader worker's copy, which the
            DataLoader seeds itself).

    Example:
        >>> aug = RandomFlipCrop(flip=1.0, scale=(1.0, 1.0))  # always flip, never crop
        >>> aug(torch.zeros(3, 2, 2), torch.tensor([[0, 1], [0, 1]]))[1].tolist()
        [[1, 0], [1, 0]]
    """

    def __init__(self, flip: float = 0.5, scale: tuple[float, float] = (0.6, 1.0),
                 generator: torch.Generator | None = None) -> None:  # fmt: skip
        if not 0 <= flip <= 1:
            raise ValueError(f"flip is a probability, in [0, 1]; got {flip}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        self.flip, self.scale, self.generator = flip, scale, generator

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        draw = torch.rand(4, generator=self.generator).tolist()
        if draw[0] < self.flip:
            image, mask = image.flip(-1), mask.flip(-1)  # (3, H, W) and (H, W): width is last
        height, width = mask.shape
        side = self.scale[0] + (self.scale[1] - self.scale[0]) * draw[1]
        h, w = max(1, round(height * side)), max(1, round(width * side))
        top, left = int(draw[2] * (height - h + 1)), int(draw[3] * (width - w + 1))
        if (h, w) == (height, width):
            return image, mask  # the whole image: nothing to crop or resize
        crop = (slice(top, top + h), slice(left, left + w))
        return resize_pair(image[:, crop[0], crop[1]], mask[crop], (height, width))


def save_pairs(
    images: torch.Tensor, masks: torch.Tensor, root: str | Path, image_suffix: str = ".png"
) -> tuple[Path, Path]:
    """Write images and masks in the layout ``SegmentationFolder`` reads.

    Args:
        images: float (N, 3, H, W) in [0, 1].
        masks: integer (N, H, W), values 0..255.
        root: the folder to write ``images/`` and ``masks/`` into (created if needed).
        image_suffix: ``".png"`` (lossless) or ``".jpg"`` (smaller; pixel values change a
            little). Masks are always PNG: their labels must survive exactly.

    Returns:
        The images folder and the masks folder.
    """
    from PIL import Image

    if image_suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"image_suffix must be one of {IMAGE_SUFFIXES}, got {image_suffix!r}")
    if masks.min() < 0 or masks.max() > 255:
        raise ValueError("mask values must be in 0..255 to be stored in an 8-bit PNG")
    folders = Path(root) / "images", Path(root) / "masks"
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(images) - 1))  # zero-padded names sort in order: 007 before 010
    for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
        pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        quality = {"quality": 95, "subsampling": 0} if image_suffix != ".png" else {}  # JPEG
        Image.fromarray(pixels).save(folders[0] / f"{i:0{width}d}{image_suffix}", **quality)
        labels = mask.to(torch.uint8).numpy()  # (H, W) uint8: saved as a mode-L PNG
        Image.fromarray(labels).save(folders[1] / f"{i:0{width}d}.png")
    return folders


def jpeg_round_trip(masks: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """What masks read back as after a trip through JPEG files: why masks are stored as PNG.

    Each mask is saved as a greyscale JPEG in memory (Pillow, ``quality`` 75 is Pillow's
    default) and decoded again.

    Args:
        masks: integer (N, H, W) or (H, W), values 0..255.
        quality: JPEG quality, 1 (worst) to 95 (best) (default 75).

    Returns:
        int64, the shape of ``masks``: the values a JPEG file would give back.

    Example:
        >>> flat = torch.full((8, 8), 80)  # no edge: JPEG keeps a flat block exact
        >>> torch.equal(jpeg_round_trip(flat), flat)
        True
    """
    from PIL import Image

    if masks.min() < 0 or masks.max() > 255:
        raise ValueError("mask values must be in 0..255 to be stored in an 8-bit JPEG")
    decoded = []
    for mask in masks.reshape(-1, *masks.shape[-2:]):  # (N, H, W) or (1, H, W)
        buffer = io.BytesIO()
        Image.fromarray(mask.to(torch.uint8).numpy()).save(buffer, "JPEG", quality=quality)
        with Image.open(buffer) as file:
            decoded.append(torch.from_numpy(np.asarray(file, dtype=np.int64)))
    return torch.stack(decoded).reshape(masks.shape)

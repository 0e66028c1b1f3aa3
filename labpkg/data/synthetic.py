"""Synthetic segmentation data made on the fly: no download, the same images for the same seed.

Each image shows a few objects (circles, squares, triangles) with random colours, sizes,
positions and rotations on a textured, noisy background. Colour says nothing about the class, so
a model has to learn *shape*. The mask holds one class id per pixel (0 is background).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from labpkg.core.checks import as_int

__all__ = [
    "CLASS_NAMES",
    "ShapesConfig",
    "SyntheticShapes",
    "make_shapes",
    "train_val_split",
    "Transformed",
    "make_loaders",
]

CLASS_NAMES = ("background", "circle", "square", "triangle")
_CHUNK = 256  # samples generated per RNG seed: sample i is the same whatever the dataset size


@dataclass(frozen=True)
class ShapesConfig:
    """How the synthetic images look.

    Args:
        size: image height and width in pixels (default 64).
        num_classes: classes including background, 2 to 4 (default 4: circle, square, triangle).
        max_objects: objects per image, drawn uniformly from 1..max_objects (default 3).
        min_radius, max_radius: object size as a fraction of ``size`` (defaults 0.10, 0.22).
        noise: standard deviation of the per-pixel Gaussian noise (default 0.08).
        texture: strength of the smooth background texture (default 0.25).

    Example:
        >>> ShapesConfig.preset("hard").noise > ShapesConfig.preset("easy").noise
        True
    """

    size: int = 64
    num_classes: int = 4
    max_objects: int = 3
    min_radius: float = 0.10
    max_radius: float = 0.22
    noise: float = 0.08
    texture: float = 0.25

    @classmethod
    def preset(cls, difficulty: str, **overrides) -> ShapesConfig:
        """``"easy"`` (plain, clean), ``"medium"`` (the default) or ``"hard"`` (busy, noisy)."""
        presets = {
            "easy": cls(noise=0.02, texture=0.0, max_objects=2),
            "medium": cls(),
            "hard": cls(noise=0.15, texture=0.45, max_objects=4, min_radius=0.07),
        }
        if difficulty not in presets:
            raise ValueError(f"difficulty must be one of {sorted(presets)}, got {difficulty!r}")
        return replace(presets[difficulty], **overrides)

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= len(CLASS_NAMES):
            raise ValueError(
                f"num_classes must be in 2..{len(CLASS_NAMES)}, got {self.num_classes}"
            )
        as_int(self.size, "size (pixels)", 8)
        as_int(self.max_objects, "max_objects", 1)
        if not 0 < self.min_radius <= self.max_radius < 0.5:
            raise ValueError("need 0 < min_radius <= max_radius < 0.5 (fractions of size)")


def make_shapes(n: int, config: ShapesConfig | None = None, seed: int = 0):
    """Generate ``n`` images and masks.

    Args:
        n: number of samples (>= 0).
        config: a ``ShapesConfig`` (default: medium difficulty, 64×64, 4 classes).
        seed: the same seed gives the same samples; sample i does not depend on ``n``.

    Returns:
        ``(images, masks)``: float32 (n, 3, H, W) in about [0, 1] and int64 (n, H, W).

    Example:
        >>> images, masks = make_shapes(2, ShapesConfig(size=32), seed=1)
        >>> tuple(images.shape), tuple(masks.shape), masks.dtype
        ((2, 3, 32, 32), (2, 32, 32), torch.int64)
    """
    as_int(n, "n", 0)
    config = config or ShapesConfig()
    images, masks = [], []
    for start in range(0, n, _CHUNK):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + start // _CHUNK)
        chunk_images, chunk_masks = _draw_chunk(_CHUNK, config, gen)
        images.append(chunk_images[: n - start])
        masks.append(chunk_masks[: n - start])
    if not images:
        s = config.size
        return torch.zeros(0, 3, s, s), torch.zeros(0, s, s, dtype=torch.long)
    return torch.cat(images), torch.cat(masks)


def _draw_chunk(n: int, cfg: ShapesConfig, gen: torch.Generator):
    """All objects of ``n`` images at once: one (n, H, W) boolean mask per object slot."""
    s = cfg.size
    coords = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (H, W) each, in [0, 1]
    base = 0.2 + 0.6 * torch.rand(n, 3, 1, 1, generator=gen)  # background colour
    image = _background(base, cfg, gen)  # (n, 3, H, W)
    mask = torch.zeros(n, s, s, dtype=torch.long)
    count = torch.randint(1, cfg.max_objects + 1, (n,), generator=gen)
    for slot in range(cfg.max_objects):
        cls = torch.randint(1, cfg.num_classes, (n,), generator=gen)
        radius = cfg.min_radius + (cfg.max_radius - cfg.min_radius) * torch.rand(n, generator=gen)
        centre = radius[:, None] + (1 - 2 * radius[:, None]) * torch.rand(n, 2, generator=gen)
        angle = 2 * math.pi * torch.rand(n, generator=gen)
        # every channel differs from the background by 0.3-0.7, so no object is invisible
        colour = (base[:, :, 0, 0] + 0.3 + 0.4 * torch.rand(n, 3, generator=gen)) % 1.0
        dy = yy - centre[:, 0, None, None]  # (n, H, W)
        dx = xx - centre[:, 1, None, None]
        inside = _shape_masks(dx, dy, radius[:, None, None], angle[:, None, None])  # (3, n, H, W)
        drawn = inside[cls - 1, torch.arange(n)] & (slot < count)[:, None, None]  # (n, H, W)
        shade = 0.85 + 0.15 * (dx - dy)[:, None]  # a gentle gradient so objects are not flat
        image = torch.where(drawn[:, None], colour[:, :, None, None] * shade, image)
        mask = torch.where(drawn, cls[:, None, None], mask)
    image = image + cfg.noise * torch.randn(image.shape, generator=gen)
    return image.clamp_(0, 1), mask


def _shape_masks(dx, dy, r, angle):
    """Circle, square and triangle of circumradius-like size ``r``, rotated by ``angle``."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos  # coordinates in the object's frame
    circle = dx**2 + dy**2 <= (0.85 * r) ** 2
    square = (u.abs() <= 0.75 * r) & (v.abs() <= 0.75 * r)
    triangle = torch.ones_like(circle)
    for k in range(3):  # an equilateral triangle is three half-planes
        a = 2 * math.pi * k / 3
        triangle &= u * math.cos(a) + v * math.sin(a) <= 0.5 * r
    return torch.stack([circle, square, triangle])


def _background(base: torch.Tensor, cfg: ShapesConfig, gen: torch.Generator) -> torch.Tensor:
    low = (
        torch.rand(base.shape[0], 3, 8, 8, generator=gen) - 0.5
    )  # coarse noise, upsampled = smooth texture
    texture = F.interpolate(low, size=(cfg.size, cfg.size), mode="bicubic", align_corners=False)
    return (base + cfg.texture * texture).clamp(0, 1)


class SyntheticShapes(Dataset):
    """A ``Dataset`` of synthetic shapes, generated once in memory.

    Args:
        n: number of samples.
        config: a ``ShapesConfig`` (default medium, 64×64, 4 classes).
        seed: generation seed (default 0).
        return_index: also return each sample's index, to show which samples a batch holds.
        fresh_each_epoch: draw new samples at every epoch (the Trainer calls ``set_epoch``):
            the model never sees an image twice, so it cannot memorise the training set.

    Example:
        >>> ds = SyntheticShapes(10, seed=0)
        >>> image, mask = ds[3]
        >>> tuple(image.shape), tuple(mask.shape)
        ((3, 64, 64), (64, 64))
    """

    def __init__(
        self,
        n: int,
        config: ShapesConfig | None = None,
        seed: int = 0,
        return_index: bool = False,
        fresh_each_epoch: bool = False,
    ) -> None:
        self.config = config or ShapesConfig()
        self.n, self.seed, self.fresh_each_epoch = n, seed, fresh_each_epoch
        self.images, self.masks = make_shapes(n, self.config, seed)
        self.return_index = return_index
        self.class_names = CLASS_NAMES[: self.config.num_classes]

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """With ``fresh_each_epoch``, replace the samples by those of seed ``(seed, epoch)``."""
        if self.fresh_each_epoch and epoch > 0:
            seed = self.seed + 7919 * epoch  # far from neighbouring seeds' chunks
            self.images, self.masks = make_shapes(self.n, self.config, seed)

    def __getitem__(self, index: int):
        if self.return_index:
            return self.images[index], self.masks[index], index
        return self.images[index], self.masks[index]


def train_val_split(
    dataset: Dataset, val_fraction: float = 0.2, seed: int = 0, val_dataset: Dataset | None = None
):
    """Split a dataset into disjoint training and validation subsets, at random.

    Args:
        dataset: any map-style dataset with ``len``.
        val_fraction: share of samples held out for validation, in (0, 1) (default 0.2).
        seed: the permutation seed (default 0).
        val_dataset: where to take the validation samples from (default ``dataset``): the
            same samples read another way, typically without the training augmentation, so
            that validation measures the images as they are. Must have ``dataset``'s length.
            Simpler: split the unaugmented dataset and wrap only the training part in
            ``Transformed``.

    Returns:
        ``(train, val)`` as ``torch.utils.data.Subset`` objects.

    Example:
        >>> train, val = train_val_split(SyntheticShapes(10), val_fraction=0.3)
        >>> len(train), len(val)
        (7, 3)
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n = len(dataset)
    n_val = round(n * val_fraction)
    if n_val == 0 or n_val == n:
        raise ValueError(f"val_fraction={val_fraction} leaves an empty split of {n} samples")
    if val_dataset is None:
        val_dataset = dataset
    elif len(val_dataset) != n:
        raise ValueError(
            f"val_dataset has {len(val_dataset)} samples and dataset {n}: pass the same samples "
            "(e.g. the same folder without transform=)"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[n_val:]), Subset(val_dataset, order[:n_val])


class Transformed(Dataset):
    """A dataset read through a joint transform: augment the training part after splitting.

    Split first, then wrap only the training subset, so that validation reads every sample as
    it is, the same at every read::

        train, val = train_val_split(dataset, 0.2)
        train = Transformed(train, RandomFlipCrop())  # val stays unaugmented

    Args:
        dataset: any map-style dataset of ``(input, target)`` pairs (e.g. a ``Subset``).
        transform: ``(input, target) -> (input, target)``, applied afresh at every read
            (e.g. ``RandomFlipCrop()``, which draws a new flip and crop each time).

    Example:
        >>> train, val = train_val_split(SyntheticShapes(10), 0.3)
        >>> flipped = Transformed(train, lambda x, y: (x.flip(-1), y.flip(-1)))
        >>> len(flipped), torch.equal(flipped[0][1], train[0][1].flip(-1))
        (7, True)
    """

    def __init__(self, dataset: Dataset, transform: Callable) -> None:
        if not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        sample, target = self.dataset[index]
        return self.transform(sample, target)


def make_loaders(
    train: Dataset,
    val: Dataset | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    num_workers: int = 0,
    val_batch_size: int | None = None,
):
    """DataLoaders for training (shuffled) and validation (in order).

    ``pin_memory`` is on only for CUDA: page-locked host memory lets the copy to the GPU run
    asynchronously (``non_blocking=True``); on a CPU it would only cost time. ``num_workers=0``
    is the default because in-memory tensors on 2 cores load fastest in the main process.

    Args:
        train, val: datasets (``val`` may be None).
        batch_size: samples per mini-batch (>= 1, default 32).
        device: where training runs; only decides ``pin_memory``.
        shuffle: reshuffle the training set every epoch (default True).
        drop_last: drop the last, smaller training batch (default False).
        num_workers: loader processes (default 0).
        val_batch_size: batch size for validation (default: ``batch_size``).

    Returns:
        ``(train_loader, val_loader)``; ``val_loader`` is None when ``val`` is None.

    Example:
        >>> tl, vl = make_loaders(SyntheticShapes(10), batch_size=4, device="cpu")
        >>> len(tl), vl is None
        (3, True)
    """
    # NumPy integers (np.int64 from a config or a sweep) are integers too: DataLoader refuses
    # them, so they become Python ints here
    batch_size = as_int(batch_size, "batch_size", 1)
    val_batch_size = (
        batch_size if val_batch_size is None else as_int(val_batch_size, "val_batch_size", 1)
    )
    num_workers = as_int(num_workers, "num_workers", 0)
    if len(train) == 0:
        raise ValueError("train dataset is empty: generate or load some samples first")
    pin = torch.device(device).type == "cuda" if device is not None else False
    common = {"num_workers": num_workers, "pin_memory": pin}
    train_loader = DataLoader(train, batch_size, shuffle=shuffle, drop_last=drop_last, **common)
    if val is None:
        return train_loader, None
    val_loader = DataLoader(val, val_batch_size, shuffle=False, **common)
    return train_loader, val_loader

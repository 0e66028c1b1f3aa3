"""Real data for Colab: Oxford-IIIT Pet segmentation (pet / background / border trimaps).

The files are read directly from torchvision's folder layout, so the loader is tested here on a
tiny fake copy; torchvision (the ``datasets`` extra) is imported only to download::

    root/oxford-iiit-pet/images/<name>.jpg
    root/oxford-iiit-pet/annotations/trimaps/<name>.png   1 pet, 2 background, 3 border
    root/oxford-iiit-pet/annotations/trainval.txt, test.txt   "<name> <class> <species> <breed>"
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["OxfordPetSegmentation", "PET_CLASSES", "BORDER"]

PET_CLASSES = ("background", "pet")
BORDER = 255  # the thin border the annotators left undecided: pass ignore_index=255


class OxfordPetSegmentation(Dataset):
    """Oxford-IIIT Pet images with masks: 0 background, 1 pet, 255 border (to ignore).

    Args:
        root: folder that holds (or will hold) ``oxford-iiit-pet/``.
        split: ``"trainval"`` or ``"test"``.
        size: images and masks are resized to ``size`` × ``size`` (default 128).
        download: fetch the data with torchvision if it is missing (needs
            ``pip install "labpkg[datasets]"``, and a network: use it on Colab).

    Returns (per item):
        ``(image, mask)``: float32 (3, size, size) in [0, 1] and int64 (size, size).
    """

    def __init__(
        self, root: str | Path, split: str = "trainval", size: int = 128, download: bool = False
    ) -> None:
        if split not in ("trainval", "test"):
            raise ValueError(f"split must be 'trainval' or 'test', got {split!r}")
        self.base = Path(root) / "oxford-iiit-pet"
        if download and not (self.base / "annotations" / f"{split}.txt").exists():
            _download(Path(root), split)
        listing = self.base / "annotations" / f"{split}.txt"
        if not listing.exists():
            raise FileNotFoundError(
                f"{listing} not found: pass download=True (on Colab), or point root at the "
                "folder that contains oxford-iiit-pet/"
            )
        self.names = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        self.size = size

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):
        from PIL import Image  # pillow comes with matplotlib

        name = self.names[index]
        image = Image.open(self.base / "images" / f"{name}.jpg").convert("RGB")
        trimap = Image.open(self.base / "annotations" / "trimaps" / f"{name}.png")
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        t = torch.from_numpy(np.asarray(trimap, dtype=np.int64))
        mask = torch.full_like(t, BORDER)
        mask[t == 1], mask[t == 2] = 1, 0
        x = F.interpolate(
            x[None], size=(self.size, self.size), mode="bilinear", align_corners=False
        )[0]
        # nearest keeps labels as labels (no 0.5 between background and pet)
        mask = F.interpolate(mask[None, None].float(), size=(self.size, self.size), mode="nearest")[
            0, 0
        ].long()
        return x, mask


def _download(root: Path, split: str) -> None:
    try:
        from torchvision.datasets import OxfordIIITPet
    except ImportError as err:
        raise ImportError(
            'downloading needs torchvision: pip install "labpkg[datasets]" (Colab has it)'
        ) from err
    OxfordIIITPet(str(root), split=split, target_types="segmentation", download=True)

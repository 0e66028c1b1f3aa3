"""Real data for Colab: Oxford-IIIT Pet segmentation (pet / background / border trimaps).

The files are read directly from torchvision's folder layout, so the loader is tested here on a
tiny fake copy; torchvision (the ``datasets`` extra) is imported only to download::

    root/oxford-iiit-pet/images/<name>.jpg
    root/oxford-iiit-pet/annotations/trimaps/<name>.png   1 pet, 2 background, 3 border
    root/oxford-iiit-pet/annotations/trainval.txt, test.txt   "<name> <class> <species> <breed>"
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labpkg.data.folder import SegmentationFolder

__all__ = ["OxfordPetSegmentation", "PET_CLASSES", "BORDER", "TRIMAP_VALUES", "why_no_download"]

PET_CLASSES = ("background", "pet")
BORDER = 255  # the thin border the annotators left undecided: pass ignore_index=255
TRIMAP_VALUES = {1: 1, 2: 0, 3: BORDER}  # trimap file value -> class (pet 1, background 0)
HOST = "www.robots.ox.ac.uk"  # where torchvision downloads the dataset from


def why_no_download(timeout: float = 5.0) -> str | None:
    """Why the dataset cannot be downloaded here, or None if it can.

    Checks, quickly, that torchvision is installed and that the dataset's server answers: a
    notebook can then skip the download with this message instead of failing (or hanging).

    Args:
        timeout: seconds to wait for the server.

    Returns:
        None, or a sentence saying what is missing.
    """
    import importlib.util
    import socket

    if importlib.util.find_spec("torchvision") is None:
        return 'torchvision is not installed: pip install "labpkg[datasets]" (Colab has it)'
    try:
        with socket.create_connection((HOST, 443), timeout=timeout):
            return None
    except OSError as err:
        return f"cannot reach {HOST} ({err.__class__.__name__}): this machine looks offline"


class OxfordPetSegmentation(SegmentationFolder):
    """Oxford-IIIT Pet images with masks: 0 background, 1 pet, 255 border (to ignore).

    A ``SegmentationFolder`` over the dataset's own folders, its split listing and its trimap
    values.

    Args:
        root: folder that holds (or will hold) ``oxford-iiit-pet/``.
        split: ``"trainval"`` or ``"test"``.
        size: images and masks are resized to ``size`` × ``size`` (default 128).
        download: fetch the data with torchvision if it is missing (needs
            ``pip install "labpkg[datasets]"``, and a network: use it on Colab).
        transform: a joint augmentation, e.g. ``labpkg.data.folder.RandomFlipCrop()``.

    Returns (per item):
        ``(image, mask)``: float32 (3, size, size) in [0, 1] and int64 (size, size).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "trainval",
        size: int = 128,
        download: bool = False,
        transform: Callable | None = None,
    ) -> None:
        if split not in ("trainval", "test"):
            raise ValueError(f"split must be 'trainval' or 'test', got {split!r}")
        base = Path(root) / "oxford-iiit-pet"
        listing = base / "annotations" / f"{split}.txt"
        if download and not listing.exists():
            _download(Path(root), split)
        if not listing.exists():
            raise FileNotFoundError(
                f"{listing} not found: pass download=True (on Colab), or point root at the "
                "folder that contains oxford-iiit-pet/"
            )
        names = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        super().__init__(base / "images", base / "annotations" / "trimaps", size,
                         TRIMAP_VALUES, names, transform)  # fmt: skip
        self.names = names


def _download(root: Path, split: str) -> None:
    try:
        from torchvision.datasets import OxfordIIITPet
    except ImportError as err:
        raise ImportError(
            'downloading needs torchvision: pip install "labpkg[datasets]" (Colab has it)'
        ) from err
    OxfordIIITPet(str(root), split=split, target_types="segmentation", download=True)

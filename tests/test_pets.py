"""The Oxford-IIIT Pet loader, on a tiny fake copy of its folder layout written here."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from labpkg.data.pets import BORDER, OxfordPetSegmentation


@pytest.fixture
def pet_root(tmp_path):
    base = tmp_path / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations" / "trimaps").mkdir(parents=True)
    names = ["Abyssinian_1", "beagle_2", "pug_3"]
    for i, name in enumerate(names):
        rgb = np.full((20, 30, 3), 40 * i, dtype=np.uint8)
        Image.fromarray(rgb).save(base / "images" / f"{name}.jpg")
        trimap = np.full((20, 30), 2, dtype=np.uint8)  # background
        trimap[5:15, 10:20] = 1  # the pet
        trimap[5, 10:20] = 3  # its border
        Image.fromarray(trimap).save(base / "annotations" / "trimaps" / f"{name}.png")
    lines = [f"{n} {i + 1} 1 {i + 1}" for i, n in enumerate(names[:2])]
    (base / "annotations" / "trainval.txt").write_text("\n".join(lines) + "\n")
    (base / "annotations" / "test.txt").write_text(f"{names[2]} 3 2 3\n")
    return tmp_path


def test_reads_split_and_maps_trimap_to_background_pet_border(pet_root):
    ds = OxfordPetSegmentation(pet_root, "trainval", size=20)
    assert len(ds) == 2 and len(OxfordPetSegmentation(pet_root, "test", size=20)) == 1
    image, mask = ds[1]
    assert image.shape == (3, 20, 20) and image.dtype == torch.float32
    assert mask.shape == (20, 20) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) == {0, 1, BORDER}
    assert float(image.min()) >= 0 and float(image.max()) <= 1


def test_missing_data_explains_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        OxfordPetSegmentation(tmp_path)
    with pytest.raises(ValueError, match="split"):
        OxfordPetSegmentation(tmp_path, split="train")


def test_download_without_torchvision_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as in the default environment
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match=r"labpkg\[datasets\]"):
        OxfordPetSegmentation(tmp_path, download=True)


def test_why_no_download_names_the_missing_extra(monkeypatch):
    import importlib.util

    from labpkg.data import pets

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "labpkg[datasets]" in pets.why_no_download()


def test_why_no_download_says_offline_when_the_server_does_not_answer(monkeypatch):
    import importlib.util
    import socket

    from labpkg.data import pets

    def refuse(*args, **kwargs):
        raise OSError("unreachable")

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert "offline" in pets.why_no_download(timeout=0.1)

"""A folder of images and masks, written here from the synthetic generator and read back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import labpkg
from labpkg.data.folder import RandomFlipCrop, SegmentationFolder, resize_pair, save_pairs


@pytest.fixture
def shapes():
    return labpkg.make_shapes(6, labpkg.ShapesConfig(size=32), seed=0)


@pytest.fixture
def folder(tmp_path, shapes):
    return save_pairs(*shapes, tmp_path)


def test_masks_read_back_equal_the_masks_written_and_every_pair_is_found(folder, shapes):
    images, masks = shapes
    data = SegmentationFolder(*folder, size=None)
    assert len(data) == 6
    for i in range(6):
        image, mask = data[i]
        assert mask.dtype == torch.int64 and torch.equal(mask, masks[i])
        assert image.dtype == torch.float32 and image.shape == images[i].shape
        assert (image - images[i]).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit PNG rounding


def test_jpeg_images_are_read_and_masks_stay_exact(tmp_path, shapes):
    images, masks = shapes
    data = SegmentationFolder(*save_pairs(images, masks, tmp_path, ".jpg"), size=None)
    assert all(torch.equal(data[i][1], masks[i]) for i in range(6))
    assert (data[0][0] - images[0]).abs().mean() < 0.05  # lossy, but close


def test_resizing_keeps_only_labels_that_were_there(folder, shapes):
    _, masks = shapes
    data = SegmentationFolder(*folder, size=(16, 24))
    for i in range(6):
        image, mask = data[i]
        assert image.shape == (3, 16, 24) and mask.shape == (16, 24)
        assert set(mask.unique().tolist()) <= set(masks[i].unique().tolist())
    halved = SegmentationFolder(*folder, size=16)[0][1]
    assert torch.equal(halved, masks[0][1::2, 1::2])  # nearest-exact takes each pair's second


def test_mask_values_map_file_values_to_classes_and_unknown_values_are_named(tmp_path):
    masks = torch.tensor([[[1, 2], [3, 3]]])
    folder = save_pairs(torch.rand(1, 3, 2, 2), masks, tmp_path)
    mapped = SegmentationFolder(*folder, size=None, mask_values={1: 1, 2: 0, 3: 255})[0][1]
    assert mapped.tolist() == [[1, 0], [255, 255]]
    with pytest.raises(ValueError, match=r"values \[3\] that mask_values does not map"):
        SegmentationFolder(*folder, size=None, mask_values={1: 1, 2: 0})[0]
    with pytest.raises(ValueError, match="classes >= 0"):
        SegmentationFolder(*folder, mask_values={1: -1})


def test_names_choose_and_order_the_pairs(folder):
    data = SegmentationFolder(*folder, size=None, names=["3", "1"])
    assert [f[0].stem for f in data.files] == ["3", "1"]
    with pytest.raises(FileNotFoundError, match=r"1 images missing .* \['9'\]"):
        SegmentationFolder(*folder, names=["9"])


def test_a_missing_mask_a_colour_mask_and_a_size_mismatch_are_clear_errors(tmp_path, folder):
    images, masks = folder
    (masks / "2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 masks \(\.png\) missing .* \['2'\]"):
        SegmentationFolder(images, masks)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(masks / "2.png")  # an RGB mask
    with pytest.raises(ValueError, match="one class number per pixel"):
        SegmentationFolder(images, masks)[2]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / "2.png")
    with pytest.raises(ValueError, match="must have its image's height and width"):
        SegmentationFolder(images, masks)[2]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        SegmentationFolder(empty, masks)
    with pytest.raises(FileNotFoundError, match="masks folder"):
        SegmentationFolder(images, tmp_path / "nowhere")


# ------------------------------------------- files as scanners, editors and cameras write them
def _one_pair(root, image, mask, mask_name="0.png"):
    """``image`` and ``mask`` (PIL images) saved as images/0.png and masks/``mask_name``."""
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    image.save(root / "images" / "0.png")
    mask.save(root / "masks" / mask_name)
    return root / "images", root / "masks"


def test_16_bit_images_are_scaled_by_their_bit_depth_not_saturated(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16) * 1040).reshape(8, 8)  # 0 .. 65520
    grey16 = Image.fromarray(ramp)  # mode I;16, as microscopes and scanners save
    assert grey16.mode == "I;16"
    folder = _one_pair(tmp_path, grey16, Image.fromarray(np.zeros((8, 8), np.uint8)))
    image = SegmentationFolder(*folder, size=None)[0][0]
    expected = torch.from_numpy(ramp / 65535.0).float().expand(3, 8, 8)
    torch.testing.assert_close(image, expected)  # before: 63 of 64 pixels read as 1.0


def test_a_truncated_file_is_an_error_that_names_the_file(tmp_path):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8))
    images, masks = _one_pair(tmp_path, rgb, Image.fromarray(np.zeros((16, 16), np.uint8)))
    whole = (images / "0.png").read_bytes()
    (images / "0.png").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    with pytest.raises(OSError, match=r"0\.png cannot be read \(image file is truncated\)"):
        SegmentationFolder(images, masks)[0]


def test_1_bit_masks_read_as_classes_0_and_1(tmp_path):
    bits = np.zeros((8, 8), bool)
    bits[2:5, 3:6] = True
    mask = Image.fromarray(bits)  # mode "1", as some editors save black and white
    assert mask.mode == "1"
    folder = _one_pair(tmp_path, Image.new("RGB", (8, 8)), mask)
    assert torch.equal(SegmentationFolder(*folder, size=None)[0][1], torch.from_numpy(bits).long())


def test_a_mask_with_an_upper_case_extension_is_found(tmp_path):
    zeros = Image.fromarray(np.zeros((8, 8), np.uint8))
    folder = _one_pair(tmp_path, Image.new("RGB", (8, 8)), zeros, mask_name="0.PNG")
    assert SegmentationFolder(*folder, size=None)[0][1].shape == (8, 8)


@pytest.mark.parametrize("size", [0, -3, (4,), (0, 4), 8.5, "8", (8, None)])
def test_a_bad_size_is_refused_when_the_folder_is_built(folder, size):
    with pytest.raises(ValueError, match=r"size must be an int >= 1 .* or None"):
        SegmentationFolder(*folder, size=size)


def test_numpy_integers_are_accepted_as_sizes(folder):
    assert SegmentationFolder(*folder, size=np.int64(16))[0][1].shape == (16, 16)
    assert SegmentationFolder(*folder, size=(np.int32(8), 16))[0][1].shape == (8, 16)


@pytest.mark.parametrize("mask_values", [{}, [(0, 0)], {0.5: 1}, {"0": 0}])
def test_an_empty_or_malformed_mask_values_is_refused_with_an_example(folder, mask_values):
    with pytest.raises(ValueError, match=r"mask_values"):
        SegmentationFolder(*folder, mask_values=mask_values)


def test_flip_and_crop_move_image_and_mask_together_and_keep_labels_exact(shapes):
    images, masks = shapes
    torch.manual_seed(0)
    augment = RandomFlipCrop(flip=0.5, scale=(0.5, 0.9))
    for i in range(6):
        # an image whose red channel *is* the mask: after augmentation they must still agree
        image = images[i].clone()
        image[0] = masks[i].float() / 3
        out_image, out_mask = augment(image, masks[i])
        assert out_mask.shape == masks[i].shape and out_mask.dtype == torch.int64
        assert set(out_mask.unique().tolist()) <= set(masks[i].unique().tolist())
        agree = ((out_image[0] * 3).round().long() == out_mask).float().mean()
        assert agree > 0.9  # bilinear blurs the image at edges; the mask stays sharp


def test_a_full_flip_is_an_exact_mirror():
    mask = torch.arange(12).reshape(3, 4)
    image = torch.rand(3, 3, 4)
    out_image, out_mask = RandomFlipCrop(flip=1.0, scale=(1.0, 1.0))(image, mask)
    assert torch.equal(out_mask, mask.flip(-1))
    torch.testing.assert_close(out_image, image.flip(-1))


@pytest.mark.parametrize(
    ("options", "message"),
    [({"flip": 1.5}, "flip is a probability"), ({"scale": (0.0, 1.0)}, "scale")],
)
def test_bad_augmentation_settings_name_the_argument(options, message):
    with pytest.raises(ValueError, match=message):
        RandomFlipCrop(**options)


def test_resize_pair_never_invents_a_label():
    mask = torch.tensor([[0, 3] * 5] * 10)
    _, small = resize_pair(torch.rand(3, 10, 10), mask, (7, 7))
    assert set(small.unique().tolist()) <= {0, 3}


def test_save_pairs_refuses_labels_an_8_bit_png_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="0..255"):
        save_pairs(torch.rand(1, 3, 2, 2), torch.full((1, 2, 2), 300), tmp_path)


def test_jpeg_round_trip_equals_writing_and_reading_a_jpeg_file(tmp_path, shapes):
    _, masks = shapes
    stored = masks * 80  # grey levels 0, 80, 160, 240: sharp edges between them
    back = labpkg.jpeg_round_trip(stored)
    assert back.shape == stored.shape and back.dtype == torch.int64
    Image.fromarray(stored[2].to(torch.uint8).numpy()).save(tmp_path / "m.jpg")  # quality 75
    assert np.array_equal(back[2].numpy(), np.asarray(Image.open(tmp_path / "m.jpg")))
    assert (back != stored).any()  # JPEG changes labels at edges: why masks are PNG
    assert torch.equal(labpkg.jpeg_round_trip(stored[2]), back[2])  # (H, W) works too
    with pytest.raises(ValueError, match="0..255"):
        labpkg.jpeg_round_trip(torch.tensor([[256]]))

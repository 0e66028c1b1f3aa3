"""The U-Net chapter's numbers: shapes per block, parameters, and the receptive field."""

from __future__ import annotations

import pytest
import torch
from matplotlib.patches import Rectangle

import labpkg


def test_layer_shapes_follow_the_u_and_leave_the_model_as_it_was():
    model = labpkg.UNet(labpkg.UNetConfig(base_width=8, depth=3))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = labpkg.layer_shapes(model, image_size=32, batch=2)
    assert [(r.name, r.part, r.level, r.shape) for r in rows] == [
        ("stem", "encoder", 0, (2, 8, 32, 32)),
        ("downs.0", "encoder", 1, (2, 16, 16, 16)),
        ("downs.1", "bottom", 2, (2, 32, 8, 8)),
        ("ups.0", "decoder", 1, (2, 16, 16, 16)),
        ("ups.1", "decoder", 0, (2, 8, 32, 32)),
        ("head", "head", 0, (2, 4, 32, 32)),
    ]
    assert sum(r.parameters for r in rows) == labpkg.count_parameters(model)
    assert model.training  # put back in the mode it had
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm statistics untouched


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_the_centre_output_depends_on_exactly_the_receptive_field(depth):
    config = labpkg.UNetConfig(base_width=4, depth=depth)
    field = labpkg.receptive_field(config)
    torch.manual_seed(0)
    model = labpkg.UNet(config).double().eval()  # real, random weights this time
    size = 2 ** (depth - 1) * 16
    centre = size // 2
    image = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    # one backward pass: a pixel outside the field has no path to the centre output, so its
    # gradient is exactly 0; inside, float64 leaves no path's contribution rounded away
    model(image)[0, :, centre, centre].sum().backward()
    reach = image.grad[0, :, centre].abs().sum(0)  # (size,): influence of each column
    columns = reach.nonzero().flatten().tolist()
    assert max(columns) - min(columns) + 1 == len(columns) == field  # one block, that wide


def test_draw_unet_draws_one_box_per_block():
    rows = labpkg.layer_shapes(labpkg.UNet(), image_size=64)
    figure = labpkg.viz.draw_unet(rows)
    boxes = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert len(boxes) == len(rows)
    labpkg.viz.plt.close(figure)

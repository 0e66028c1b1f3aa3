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
def test_input_reach_is_the_exact_window_that_can_change_an_output_pixel(depth):
    config = labpkg.UNetConfig(base_width=4, depth=depth)
    size, mid = 2 ** (depth - 1) * 16, 2 ** (depth - 1) * 8
    reach = labpkg.input_reach(config, size)
    assert reach[mid][1] - reach[mid][0] + 1 == labpkg.receptive_field(config)
    torch.manual_seed(0)
    model = labpkg.UNet(config).double().eval()  # real, random weights this time
    image = torch.rand(1, 3, size, size, dtype=torch.float64, requires_grad=True)
    out = model(image)[0, :, mid]  # (C, W): the middle row
    for column in (0, 1, mid, size - 1):  # both edges, an odd column, the centre
        first, last = reach[column]
        # nothing outside the window has a path to the pixel: its gradient is exactly 0
        (grad,) = torch.autograd.grad(out[:, column].sum(), image, retain_graph=True)
        felt = grad[0, :, mid].abs().sum(0).nonzero().flatten()
        assert first <= felt.min() and felt.max() <= last
        # and the window is tight: a strong poke at either end changes the pixel (a weaker
        # one may not, where max-pooling picks another pixel of its window)
        for edge in (first, last):
            poked = image.detach().clone()
            poked[0, :, mid, edge] += 10.0
            with torch.no_grad():
                assert not torch.equal(model(poked)[0, :, mid, column], out[:, column])


def test_draw_unet_draws_one_box_per_block():
    rows = labpkg.layer_shapes(labpkg.UNet(), image_size=64)
    figure = labpkg.viz.draw_unet(rows)
    boxes = [p for p in figure.axes[0].patches if isinstance(p, Rectangle)]
    assert len(boxes) == len(rows)
    labpkg.viz.plt.close(figure)

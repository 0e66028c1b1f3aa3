"""Figures: every one is readable on the page.

The page tests (tests/test_browser.py) check figures as the browser renders them, and the
build tests that every drawing cell of every chapter has its figure in the executed notebook
(a kernel's first figure drawn inside a theme context once switched display off for every
later one); these check what the figures are drawn with: text size, ink contrast, width, and
legends off the data.
"""

from __future__ import annotations

import io

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.legend import Legend
from matplotlib.text import Text
from PIL import Image

import labpkg
from labpkg.callbacks import History
from labpkg.core.profiling import StepProfile
from labpkg.figures import viz


def _history() -> History:
    history = History()
    for epoch in range(6):
        history.on_epoch_end(
            epoch,
            {"loss": 1 / (epoch + 1), "val_loss": 1.1 / (epoch + 1), "mean_iou": epoch / 6,
             "val_mean_iou": epoch / 7, "learning_rate": 0.1},
        )  # fmt: skip
    return history


def _samples():
    images, masks = labpkg.make_shapes(8, labpkg.ShapesConfig(size=32))
    profiles = [StepProfile(b, 10.0 * b**0.5, 100.0 * b**0.5, 1.0 + b, None) for b in (1, 4, 16)]
    cm = torch.tensor([[50, 2, 3, 1], [4, 30, 2, 0], [1, 2, 20, 3], [0, 1, 2, 9]])
    return {
        "plot_history": lambda: viz.plot_history(_history()),
        "show_batch": lambda: viz.show_batch(images, masks, {"epoch 1": masks, "epoch 5": masks}),
        "plot_class_frequencies": lambda: viz.plot_class_frequencies(masks, labpkg.CLASS_NAMES),
        "plot_batch_profile": lambda: viz.plot_batch_profile(profiles),
        "plot_gradient_noise": lambda: viz.plot_gradient_noise({1: 1.0, 4: 0.3, 16: 0.07}),
        "plot_confusion_matrix": lambda: viz.plot_confusion_matrix(cm, labpkg.CLASS_NAMES),
        "plot_bars": lambda: viz.plot_bars({"one": 1e-8, "two": 3e-3, "three": 0.5}, "gap"),
        "plot_curves": lambda: viz.plot_curves({"SGD": [1, 0.7, 0.6], "Adam": [1, 0.5, 0.2]}),
        "draw_unet": lambda: viz.draw_unet(labpkg.layer_shapes(labpkg.UNet(), 64)),
        "plot_paths": lambda: viz.plot_paths(
            {name: labpkg.valley.optimizer_path(name, 0.09, steps=10) for name in ("sgd", "adam")}
        ),
        "plot_moving_average": lambda: viz.plot_moving_average([0.9, 0.999]),
    }


SAMPLES = _samples()


def test_every_drawing_function_has_a_sample_here():
    drawing = {n for n in viz.__all__ if n.startswith(("plot_", "show_", "draw_"))}
    assert drawing == set(SAMPLES)


@pytest.fixture(params=sorted(SAMPLES))
def figure(request):
    matplotlib.use("Agg")
    fig = SAMPLES[request.param]()
    fig.canvas.draw()  # lay out, so extents are final
    yield fig
    plt.close(fig)


def _texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_text_is_at_least_the_minimum_size(figure):
    small = [(t.get_text(), t.get_fontsize()) for t in _texts(figure)]
    assert [s for s in small if s[1] < viz.MIN_FONT_PT] == []


def test_text_is_dark_ink_on_an_opaque_light_figure(figure):
    paper = figure.get_facecolor()
    assert paper[3] == 1.0, "a transparent figure takes the page's colour, light or dark"
    for text in _texts(figure):
        if text.axes is not None and text.axes.images:  # drawn on an image: its own contrast
            continue
        assert viz.contrast_ratio(text.get_color(), paper) >= 7, text.get_text()


def test_text_on_confusion_matrix_cells_contrasts_with_the_cell():
    cm = torch.tensor([[49, 51], [100, 0]])  # row shares .49/.51 and 1/0: mid and dark blues
    fig = viz.plot_confusion_matrix(cm, ["a", "b"])
    ax = fig.axes[0]
    cmap, grid = ax.images[0].get_cmap(), ax.images[0].get_array()
    cells = [t for t in ax.texts]
    assert len(cells) == 4
    for text in cells:
        x, y = text.get_position()
        background = cmap(float(grid[int(y), int(x)]))
        assert viz.contrast_ratio(text.get_color(), background) >= 4.5, text.get_text()
    plt.close(fig)


def test_figure_fits_the_page_column(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # as the inline backend does
    width = Image.open(buffer).size[0]
    assert width <= (viz.MAX_WIDTH_IN + 0.25) * viz.DPI


def test_legends_sit_outside_every_axes_so_they_cover_no_data(figure):
    renderer = figure.canvas.get_renderer()
    for legend in figure.findobj(Legend):
        box = legend.get_window_extent(renderer)
        for ax in figure.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), legend.get_texts()


def test_plot_curves_takes_one_x_per_curve():
    figure = viz.plot_curves(
        {"batch 4": [0.2, 0.3], "batch 64": [0.1, 0.2]}, x={"batch 4": [16, 32], "batch 64": [1, 2]}
    )
    lines = figure.axes[0].get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[16, 32], [1, 2]]
    viz.plt.close(figure)


def test_plot_curves_draws_a_logarithmic_y_axis_on_request():
    # a diverging loss beside shrinking ones: only a log axis shows all three
    curves = {"small": [1.0, 0.9], "right": [1.0, 0.01], "large": [1.0, 1e8]}
    linear = viz.plot_curves(curves, xlabel="update")
    figure = viz.plot_curves(curves, xlabel="update", logy=True)
    assert linear.axes[0].get_yscale() == "linear"
    assert figure.axes[0].get_yscale() == "log"
    assert figure.axes[0].get_xscale() == "linear"
    figure.canvas.draw()  # the log axis's tick labels are readable and the legend clear
    small = [(t.get_text(), t.get_fontsize()) for t in _texts(figure)]
    assert [s for s in small if s[1] < viz.MIN_FONT_PT] == []
    renderer = figure.canvas.get_renderer()
    (legend,) = figure.findobj(Legend)
    axes = figure.axes[0].get_window_extent(renderer)
    assert not legend.get_window_extent(renderer).overlaps(axes)
    viz.plt.close(linear)
    viz.plt.close(figure)


def test_coinciding_curves_stay_visible_each_later_line_thinner_and_dashed_differently():
    import labpkg.figures.viz

    same = [1.0, 1.0, 1.0, 1.0]
    fig = labpkg.viz.plot_curves({"constant": same, "schedule": same, "other": same})
    lines = fig.axes[0].get_lines()
    widths = [line.get_linewidth() for line in lines]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert len({line.get_linestyle() for line in lines}) == 3
    labpkg.viz.plt.close(fig)

"""The explorer's Python side: its starting values are checked before any HTML is written."""

import re

import pytest

from labpkg.figures.widgets import MAX_EPOCHS_DRAWN, explorer_html, valley_explorer_html


@pytest.mark.parametrize(
    ("argument", "value"),
    [("n", 0), ("n", 61), ("batch_size", 33), ("epochs", 0), ("accumulate", 9),
     ("world_size", 5)],
)  # fmt: skip
def test_a_start_value_outside_the_sliders_range_names_the_argument(argument, value):
    with pytest.raises(ValueError, match=rf"{argument} must be between 1 and \d+"):
        explorer_html(**{argument: value})


def test_the_start_values_become_the_sliders_positions():
    html = explorer_html(n=23, batch_size=4, epochs=3, accumulate=2, world_size=3, drop_last=True)
    sliders = dict(re.findall(r'data-role="(\w+)" min="1" max="\d+" value="(\d+)"', html))
    assert sliders == {"n": "23", "batch": "4", "epochs": "3", "accumulate": "2", "world": "3"}
    assert 'data-role="drop_last" checked' in html


def test_two_explorers_on_one_page_get_distinct_ids():
    ids = {re.search(r'id="(tll-explorer-\w+)"', explorer_html()).group(1) for _ in range(5)}
    assert len(ids) == 5


def test_the_explorer_has_a_place_to_say_it_draws_fewer_epochs_than_asked():
    html = explorer_html(epochs=10)
    assert '<p class="tll-note" data-note></p>' in html
    assert f"const MAX_EPOCHS = {MAX_EPOCHS_DRAWN};" in html
    assert MAX_EPOCHS_DRAWN < 10  # the slider's maximum: the note has something to say


@pytest.mark.parametrize("html", [explorer_html(), valley_explorer_html()], ids=["batch", "valley"])
def test_the_explorers_take_the_pages_theme_colours(html):
    """The book's theme variables first (light or dark); the browser test checks the result."""
    assert "color:var(--pst-color-text-base," in html
    assert "background:var(--pst-color-background," in html

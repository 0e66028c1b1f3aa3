"""The valley of chapter 12: its paths follow torch.optim, and the explorer's Python side.

The explorer's JavaScript is checked against ``optimizer_path`` in tests/test_browser.py.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from labpkg.figures import valley
from labpkg.figures.valley_explorer import LEARNING_RATES, valley_explorer_html


def test_plain_sgd_multiplies_each_coordinate_by_one_minus_lr_times_its_curvature():
    lr = 0.09
    path = valley.optimizer_path("sgd", lr, steps=5)
    a, b = valley.CURVATURES
    factors = path[1:] / path[:-1]  # (steps, 2)
    torch.testing.assert_close(factors[:, 0], torch.full((5,), 1 - lr * a, dtype=torch.float64))
    torch.testing.assert_close(factors[:, 1], torch.full((5,), 1 - lr * b, dtype=torch.float64))


def test_adam_moves_every_coordinate_by_lr_at_its_first_step():
    path = valley.optimizer_path("adam", 0.05, steps=1, start=(3.0, -0.1))
    torch.testing.assert_close((path[1] - path[0]).abs(), torch.tensor([0.05, 0.05]).double())


def test_the_moving_average_of_a_constant_is_one_minus_beta_to_the_t():
    average = valley.moving_average(torch.ones(50), 0.9)
    expected = 1 - 0.9 ** torch.arange(1, 51, dtype=torch.float64)
    torch.testing.assert_close(average, expected)
    with pytest.raises(ValueError, match="beta must be in"):
        valley.moving_average([1.0], 1.0)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("lr", 0.04), ("momentum", 1.0), ("momentum", 0.555), ("beta1", -0.1), ("beta2", 0.5),
     ("steps", 0), ("steps", 101)],
)  # fmt: skip
def test_a_start_value_off_the_sliders_names_the_argument(argument, value):
    with pytest.raises(ValueError, match=rf"^{argument} must"):
        valley_explorer_html(**{argument: value})


def test_the_start_values_become_the_sliders_positions():
    html = valley_explorer_html(lr=0.2, momentum=0.75, beta1=0.5, beta2=0.99, steps=12)
    sliders = dict(re.findall(r'data-role="(\w+)" min="[^"]+" max="[^"]+" step="[^"]+" '
                              r'value="([^"]+)"', html))  # fmt: skip
    assert sliders == {
        "lr": str(LEARNING_RATES.index(0.2)), "momentum": "0.75", "beta1": "0.5",
        "beta2": "1", "steps": "12",
    }  # fmt: skip
    assert math.isclose(LEARNING_RATES[int(sliders["lr"])], 0.2)


def test_two_explorers_on_one_page_get_distinct_ids():
    ids = {re.search(r'id="(tll-valley-\w+)"', valley_explorer_html()).group(1) for _ in range(5)}
    assert len(ids) == 5

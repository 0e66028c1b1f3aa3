"""Two small worlds for watching optimizers: a narrow valley and a running average.

The valley is the loss f(x, y) = ½·(a·x² + b·y²) with b much larger than a (``CURVATURES``):
steep across, shallow along, the simplest *ill-conditioned* problem. A learning rate small
enough for the steep direction crawls along the shallow one. ``optimizer_path`` runs the real
``torch.optim`` optimizers on it, in float64, and returns every point they visit;
``labpkg.viz.plot_paths`` draws the paths and ``labpkg.widgets.valley_explorer`` recomputes
them in the browser (a browser test checks that both agree).

``moving_average`` is the exponential moving average that RMSprop and Adam keep:
m ← β·m + (1 − β)·g, starting from m = 0 (PyTorch's momentum keeps the same average times
1 / (1 − μ): v ← μ·v + g); ``labpkg.viz.plot_moving_average`` draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from labpkg.nn.optim import get_optimizer

__all__ = ["CURVATURES", "START", "STEPS", "moving_average", "optimizer_path", "valley_loss"]

#: The valley's curvatures a and b, along x (shallow) and across it along y (steep).
CURVATURES = (1.0, 20.0)
#: The point every path starts from, far along the valley and a little up its side.
START = (-2.0, 0.5)
#: Updates per path in the chapter's figure and the explorer.
STEPS = 40


def valley_loss(w: torch.Tensor, curvatures: Sequence[float] = CURVATURES) -> torch.Tensor:
    """f(x, y) = ½·(a·x² + b·y²) at the point ``w`` = (x, y); its gradient is (a·x, b·y).

    Example:
        >>> valley_loss(torch.tensor([1.0, 1.0])).item()  # ½·(1 + 20)
        10.5
    """
    return 0.5 * (torch.as_tensor(curvatures, dtype=w.dtype) * w**2).sum()


def optimizer_path(
    name: str,
    lr: float,
    steps: int = STEPS,
    start: Sequence[float] = START,
    curvatures: Sequence[float] = CURVATURES,
    **options: Any,
) -> torch.Tensor:
    """The points a ``torch.optim`` optimizer visits on the valley, start included.

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"`` (``labpkg.get_optimizer``).
        lr: the learning rate.
        steps: how many updates (default ``STEPS``).
        start: the first point (x, y) (default ``START``).
        curvatures: (a, b) of the valley (default ``CURVATURES``).
        **options: passed to the optimizer, e.g. ``momentum=0.9`` or ``betas=(0.9, 0.999)``.

    Returns:
        The points as a float64 tensor of shape (steps + 1, 2), row t after t updates.

    Example:
        >>> optimizer_path("sgd", lr=0.1, steps=1, start=(1.0, 1.0))  # (1, 1) − 0.1·(1, 20)
        tensor([[ 1.0000,  1.0000],
                [ 0.9000, -1.0000]], dtype=torch.float64)
    """
    w = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = get_optimizer(name, [w], lr=lr, **options)
    points = [w.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        valley_loss(w, curvatures).backward()
        optimizer.step()
        points.append(w.detach().clone())
    return torch.stack(points)  # (steps + 1, 2)


def moving_average(values: Sequence[float] | torch.Tensor, beta: float) -> torch.Tensor:
    """The exponential moving average after each value: m ← β·m + (1 − β)·value, from m = 0.

    Started at zero, the average of a constant c after t values is c·(1 − βᵗ): too small at
    first. Adam divides by (1 − βᵗ) to undo exactly that (its bias correction).

    Args:
        values: the sequence averaged (e.g. one weight's gradients, update after update).
        beta: how much of the old average each update keeps, in [0, 1).

    Returns:
        The average after each value, a float64 tensor as long as ``values``.

    Example:
        >>> moving_average([1.0, 1.0, 1.0], beta=0.5)  # 1 − 0.5ᵗ
        tensor([0.5000, 0.7500, 0.8750], dtype=torch.float64)
    """
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    m, out = 0.0, []
    for value in torch.as_tensor(values, dtype=torch.float64).tolist():
        m = beta * m + (1 - beta) * value
        out.append(m)
    return torch.tensor(out, dtype=torch.float64)

"""Optimizers by name, with PyTorch's defaults and Keras's argument names accepted.

PyTorch and Keras disagree on defaults; PyTorch's apply here:

- SGD: lr 1e-3 (Keras: learning_rate 1e-2).
- RMSprop: lr 1e-2, alpha 0.99, eps 1e-8 (Keras: learning_rate 1e-3, rho 0.9, epsilon 1e-7).
- Adam: eps 1e-8 (Keras: epsilon 1e-7).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["OPTIMIZERS", "get_optimizer"]

OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
}
# Keras names -> PyTorch names
_ALIASES = {"learning_rate": "lr", "rho": "alpha", "epsilon": "eps"}


def get_optimizer(
    name: str, params: Iterable, lr: float | None = None, **kwargs: Any
) -> torch.optim.Optimizer:
    """Build an optimizer by name.

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"`` (any case).
        params: the model's parameters (``model.parameters()``).
        lr: learning rate; None keeps PyTorch's default for that optimizer.
        **kwargs: passed on; Keras spellings ``learning_rate``, ``rho`` (RMSprop) and
            ``epsilon`` are translated to ``lr``, ``alpha`` and ``eps``.

    Returns:
        A ``torch.optim.Optimizer``.

    Example:
        >>> opt = get_optimizer("rmsprop", [torch.zeros(1, requires_grad=True)], rho=0.9)
        >>> opt.defaults["alpha"], opt.defaults["lr"]
        (0.9, 0.01)
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    for keras_name, torch_name in _ALIASES.items():
        if keras_name in kwargs:
            if torch_name in kwargs or (torch_name == "lr" and lr is not None):
                raise ValueError(f"pass either {keras_name!r} or {torch_name!r}, not both")
            kwargs[torch_name] = kwargs.pop(keras_name)
    if lr is not None:
        kwargs["lr"] = float(lr)  # also a NumPy number: checkpoints hold plain floats
    if "lr" in kwargs and not (kwargs["lr"] > 0 and math.isfinite(kwargs["lr"])):
        raise ValueError(f"lr must be a finite number > 0, got {kwargs['lr']}")
    return OPTIMIZERS[key](params, **kwargs)

"""``saved_activation_bytes``: the memory autograd keeps for the backward pass, counted once.

The timing tables that compare settings are tested in ``test_timing.py``."""

from __future__ import annotations

import torch
from torch import nn

import labpkg
from labpkg.core.profiling import saved_activation_bytes

FLOAT32 = 4  # bytes


def test_a_tensor_two_operations_save_counts_once_and_weights_not_at_all():
    # conv1 saves x and its weight; ReLU saves its output; conv2 saves that same output
    # again and its weight. Kept for backward, beyond the weights: x and the ReLU output.
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    x = torch.rand(2, 3, 8, 8)
    assert saved_activation_bytes(net, x) == (3 + 8) * 2 * 8 * 8 * FLOAT32


def test_a_saved_view_of_a_weight_is_still_the_weight():
    # the second linear layer's input needs a gradient, so it saves a transposed view of its
    # weight (for that gradient) besides its input; the first saves only its input x
    net = nn.Sequential(nn.Linear(5, 6), nn.Linear(6, 3))
    x = torch.rand(4, 5)
    assert saved_activation_bytes(net, x) == (4 * 5 + 4 * 6) * FLOAT32


def _independent_count(output: torch.Tensor, model: nn.Module) -> int:
    """Walk the autograd graph and read each node's saved tensors (``_saved_*``)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept, seen, todo = {}, set(), [output.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        for name in dir(node):
            if not name.startswith("_saved_"):
                continue
            values = getattr(node, name)
            for value in values if isinstance(values, (tuple, list)) else [values]:
                if isinstance(value, torch.Tensor):
                    storage = value.untyped_storage()
                    if storage.data_ptr() not in weights:
                        kept[storage.data_ptr()] = storage.nbytes()
        todo.extend(next_node for next_node, _ in node.next_functions)
    return sum(kept.values())


def test_the_unet_count_equals_a_walk_of_the_autograd_graph():
    torch.manual_seed(0)
    model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=3))  # BatchNorm, in-place ReLU
    x = torch.rand(2, 3, 16, 16)
    expected = _independent_count(model(x), model)
    assert saved_activation_bytes(model, x) == expected


def test_the_memory_grows_in_step_with_the_batch():
    torch.manual_seed(0)
    model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=3))
    one, two, four = (saved_activation_bytes(model, torch.rand(b, 3, 16, 16)) for b in (1, 2, 4))
    # every image adds the same bytes (BatchNorm's per-channel statistics are a fixed part)
    assert four - two == 2 * (two - one) > 0

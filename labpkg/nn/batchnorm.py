"""BatchNorm over the *global* batch of all processes, on any device (CPU included).

Under data parallelism each process normalises with the mean and variance of its own
mini-batch; one process holding the whole global batch would use those of all of them, so the
two runs train differently. ``torch.nn.SyncBatchNorm`` closes the gap on accelerators only (it
refuses CPU tensors); this module's ``GlobalBatchNorm2d`` does it anywhere.

The cost: two collectives per layer and mini-batch, an all-reduce of the statistics in the
forward pass and an all-reduce of their gradients in the backward pass (``_SumOverProcesses``
below: the total feeds every process's loss, so each process's gradient of its own part is
the sum of all processes' gradients of the total). ``SyncBatchNorm`` also makes
two: an all-gather of each process's mean, inverse standard deviation and count in forward, an
all-reduce of two gradient sums in backward (``torch/nn/modules/_functions.py``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from labpkg.core.distributed import is_distributed, world_size

__all__ = ["GlobalBatchNorm2d", "convert_global_batchnorm"]


class _SumOverProcesses(torch.autograd.Function):
    """``_SumOverProcesses.apply(x)``: the sum of ``x`` over every process, with gradients.

    Forward: one all-reduce of ``x``. Backward: one all-reduce of the incoming gradient,
    since every process's loss depends on the same total. (PyTorch's own
    ``torch.distributed.nn.functional.all_reduce`` does the same, and is deprecated in
    favour of a private module.)

    Example, in each of the processes ``torchrun`` starts (``GlobalBatchNorm2d`` does this)::

        local = torch.cat([x.sum((0, 2, 3)), count])  # this process's share, (C + 1,)
        total = _SumOverProcesses.apply(local)         # the same total on every process
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()  # all_reduce writes in place
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose statistics cover every process's mini-batch.

    Each channel's count, sum and sum of squares are summed across processes with an
    autograd-aware all-reduce, so forward *and* backward equal one process holding the global
    batch; the backward pass all-reduces the gradients of those sums (a second collective).
    In eval mode, or without data parallelism, it is a plain ``BatchNorm2d``.

    Example:
        >>> layer = GlobalBatchNorm2d(3)  # one process: the same as nn.BatchNorm2d(3)
        >>> x = torch.randn(4, 3, 2, 2)
        >>> torch.allclose(layer(x), nn.BatchNorm2d(3)(x))
        True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed() and world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        count = x.new_full((1,), x.numel() / c)  # values per channel in this mini-batch
        local = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), count])  # (2C + 1,)
        total = _SumOverProcesses.apply(local)  # summed over every process, gradients too
        n = total[-1]
        mean = total[:c] / n  # (C,)
        var = total[c : 2 * c] / n - mean * mean  # biased: what BatchNorm normalises with
        self._update_running_stats(mean.detach(), var.detach() * n / (n - 1))
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked.add_(1)
        # momentum None: a cumulative average, as in BatchNorm2d
        m = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(m * mean)
        self.running_var.mul_(1 - m).add_(m * unbiased_var)


def convert_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` inside ``module`` by a ``GlobalBatchNorm2d`` (state kept).

    Call it before building the optimizer and the ``Trainer``, like
    ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``. As there, each new layer keeps the old
    one's mode (``eval()`` stays eval) and which of its parameters are frozen.

    Returns:
        ``module``, changed in place (or the new layer if ``module`` is a ``BatchNorm2d``).
    """
    if type(module) is nn.BatchNorm2d:
        new = GlobalBatchNorm2d(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        new.load_state_dict(module.state_dict())
        new.train(module.training)  # a fresh layer is in training mode
        for old_param, new_param in zip(module.parameters(), new.parameters(), strict=True):
            new_param.requires_grad_(old_param.requires_grad)
        tensors = [*module.parameters(), *module.buffers()]  # none if affine=False, untracked
        return new.to(tensors[0].device) if tensors else new
    for name, child in module.named_children():
        setattr(module, name, convert_global_batchnorm(child))
    return module

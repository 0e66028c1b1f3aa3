"""``GradientNorm``: the size of every update's gradient, for spotting explosions and stalls."""

from __future__ import annotations

import math

import torch

from labpkg.callbacks.base import Callback

__all__ = ["GradientNorm", "global_grad_norm"]


def global_grad_norm(parameters) -> torch.Tensor:
    """The L2 norm of all gradients together, as if concatenated into one vector.

    The norm ``torch.nn.utils.clip_grad_norm_`` computes (and returns) before clipping: the
    square root of the sum, over parameters, of each gradient's squared L2 norm. Parameters
    without a gradient are left out.

    Returns:
        A 0-d float32 tensor on the gradients' device (no host read).

    Example:
        >>> a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
        >>> a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
        >>> global_grad_norm([a, b]).item()  # sqrt(3² + 4²)
        5.0
    """
    norms = [torch.linalg.vector_norm(p.grad.float()) for p in parameters if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))


class GradientNorm(Callback):
    """Record the global L2 norm of the gradient of every optimizer update.

    Measured in ``on_after_backward``: once per update, on the gradient of the whole
    accumulation group, unscaled under float16, before ``grad_clip_norm`` clips it (so it is
    the value ``clip_grad_norm_`` compares with its limit). The norms stay on the device during
    the epoch and are read once at its end (one host sync per epoch, not per update).

    Attributes:
        norms (list[float]): one per update, in order.
        steps (list[int]): the ``global_step`` each norm belongs to (1 for the first update).

    Adds ``grad_norm`` to the epoch logs: the mean norm of the epoch's updates. A run resumed
    from a checkpoint starts a new record, as its ``History`` does.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from labpkg.loop.trainer import Trainer
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), 0.1), "cross_entropy")
        >>> pairs = TensorDataset(torch.rand(8, 3, 4, 4), torch.randint(0, 2, (8, 4, 4)))
        >>> norms = GradientNorm()
        >>> _ = trainer.fit(DataLoader(pairs, batch_size=4), 2, callbacks=[norms], verbose=0)
        >>> norms.steps, len(norms.norms)  # 2 updates per epoch
        ([1, 2, 3, 4], 4)
    """

    log_keys: tuple[str, ...] = ("grad_norm",)  # the keys it adds to the logs

    def __init__(self) -> None:
        super().__init__()
        self.on_train_begin()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.norms: list[float] = []
        self.steps: list[int] = []
        self._epoch: list[torch.Tensor] = []  # this epoch's norms, still on the device

    def on_after_backward(self, batch: int, logs: dict | None = None) -> None:
        self._epoch.append(global_grad_norm(self.trainer.model.parameters()))

    def on_update_end(self, step: int, logs: dict | None = None) -> None:
        self.steps.append(step)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        values = self._flush()
        if logs is not None:
            logs["grad_norm"] = sum(values) / len(values) if values else math.nan

    def on_train_end(self, logs: dict | None = None) -> None:
        self._flush()  # an interrupted epoch had no on_epoch_end

    def _flush(self) -> list[float]:
        values = torch.stack(self._epoch).tolist() if self._epoch else []  # the one host read
        self.norms += values
        self._epoch = []
        return values

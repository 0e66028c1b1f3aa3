"""``Evaluator``: running a model without learning, and what training shares with it.

``Trainer`` builds on it: ``evaluate`` and ``predict`` run the model in eval mode with no
gradients; ``_validate`` is the validation pass inside ``fit``; ``_to_device`` and
``_epoch_logs`` (one host sync per pass) serve both loops.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch.utils.data import DataLoader

from labpkg import distributed

__all__ = ["Evaluator"]


class Evaluator:
    """The evaluation half of ``Trainer`` (see it for the attributes this relies on)."""

    def evaluate(
        self, data: DataLoader, max_batches: int | None = None, verbose: int = 0
    ) -> dict[str, float]:
        """Loss and metrics over ``data`` (model in eval mode, no gradients).

        Args:
            data: a DataLoader yielding ``(inputs, target)``.
            max_batches: stop after this many batches (default: all).
            verbose: 1 prints the result.

        Returns:
            ``{"loss": ..., metric names: ...}`` as floats, aggregated over the whole data.
        """
        try:
            logs = self._run_eval(distributed.distributed_loader(data), max_batches, hooks=False)
        finally:
            self._input_checks.restore()
        if verbose:
            print(" ".join(f"{k}={v:.4f}" for k, v in logs.items()))
        return logs

    def _validate(self, loader: DataLoader) -> dict[str, float]:
        self.callbacks.on_test_begin()
        logs = self._run_eval(loader, None, hooks=True)
        self.callbacks.on_test_end(logs)
        return {f"val_{k}": v for k, v in logs.items()}

    @torch.no_grad()
    def _run_eval(self, loader: DataLoader, max_batches: int | None, hooks: bool):
        self.model.eval()  # BatchNorm uses its running statistics
        for metric in self.val_metrics:
            metric.reset()
        loss_sum, count = torch.zeros((), device=self.device), 0
        for batch, (inputs, target) in enumerate(itertools.islice(loader, max_batches)):
            self._input_checks.set(batch == 0)
            if hooks:
                self.callbacks.on_test_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            logits, loss = self._forward(self.model, inputs, target)
            loss_sum += loss * len(target)
            count += len(target)
            for metric in self.val_metrics:
                metric.update(logits, target)
            if hooks:
                self.callbacks.on_test_batch_end(batch, {"loss": loss_sum / count})
        return self._epoch_logs(loss_sum, count, self.val_metrics)

    def _epoch_logs(self, loss_sum, count: int, metrics) -> dict[str, float]:
        """Sum over processes, then divide: the one host sync of an epoch."""
        totals = torch.stack([loss_sum.float(), torch.tensor(float(count), device=self.device)])
        distributed.all_reduce_sum(totals)
        total_loss, total_count = totals.tolist()  # the host sync
        logs = {"loss": total_loss / total_count if total_count > 0 else math.nan}
        for metric in metrics:
            if distributed.is_distributed():
                metric.sync(distributed.all_reduce_sum)
            logs.update(metric.results())
        return logs

    @torch.no_grad()
    def predict(self, data: DataLoader, max_batches: int | None = None) -> torch.Tensor:
        """Class scores for every input in ``data``, concatenated on the CPU (N, C, H, W).

        ``data`` may yield ``(inputs, target)`` pairs or bare input tensors.
        """
        self.model.eval()
        outputs = []
        for item in itertools.islice(data, max_batches):
            inputs = item[0] if isinstance(item, (list, tuple)) else item
            inputs = self._to_device(inputs, None)[0]
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                outputs.append(self.model(inputs).float().cpu())
        return torch.cat(outputs) if outputs else torch.empty(0)

    def _to_device(self, inputs: torch.Tensor, target: torch.Tensor | None):
        # non_blocking overlaps the copy with compute, but only from pinned memory on CUDA
        non_blocking = self.device.type == "cuda"
        inputs = inputs.to(self.device, non_blocking=non_blocking, memory_format=self.memory_format)
        if self.check_finite_inputs and not torch.isfinite(inputs).all():
            raise ValueError("input batch holds NaN or Inf values (check_finite_inputs=True)")
        if target is not None:
            target = target.to(self.device, non_blocking=non_blocking)
        return inputs, target

"""``Evaluator``: running a model without learning, and what training shares with it.

An ``Evaluator`` stands alone: ``evaluate`` and ``predict`` run the model in eval mode with no
gradients. ``Trainer`` builds on it, and its loop shares ``RunningLoss``, ``_to_device``,
``_autocast`` and ``_epoch_logs`` (one host sync per pass).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch.utils.data import DataLoader

from labpkg.core import checks, distributed
from labpkg.core.devices import amp_settings, pick_device, resolve_amp
from labpkg.loop import batch_errors

__all__ = ["Evaluator", "RunningLoss"]


@dataclass
class RunningLoss:
    """The loss of a pass so far, summed on the device (no host sync per mini-batch).

    The epoch loss is the batch-size-weighted mean: sum of loss × batch size / samples.
    """

    sum: torch.Tensor
    count: int = 0

    @classmethod
    def zero(cls, device: torch.device) -> RunningLoss:
        return cls(torch.zeros((), device=device))

    def add(self, loss: torch.Tensor, batch_size: int) -> None:
        # one in-place op, in float32 whatever the loss's dtype (a float16 loss times the
        # batch size could overflow float16); detached, so the sum holds no graph
        self.sum.add_(loss.detach(), alpha=batch_size)
        self.count += batch_size

    def mean(self) -> torch.Tensor:
        """The running mean, still on the device (reading it is a host sync)."""
        return self.sum / max(self.count, 1)


class Evaluator:
    """Evaluate and predict with a segmentation model (no optimizer, no training).

    Args:
        model: the network; it returns class scores (B, C, H, W).
        loss: ``loss(logits, target)`` returning a scalar, e.g. ``labpkg.DiceCELoss()``.
        metrics: objects that follow the ``labpkg.nn.metrics.Metric`` protocol
            (``reset/update/results/sync``), e.g. ``SegmentationMetrics``.
        device: None picks cuda, then mps, then cpu. Under ``torchrun`` it joins the
            process group itself and each process uses its own GPU (``cuda:LOCAL_RANK``);
            ``"cpu"`` keeps every process on the CPU (gloo), also where GPUs exist.
        amp: mixed precision (autocast) for forward and loss: False (default), True, or
            ``"auto"``, which turns it on where the 16-bit type is native: on GPUs, and on
            CPUs with native bfloat16 (``labpkg.devices.amp_is_fast``; a CPU that emulates it
            ran 5 to 8× slower than float32 in chapter 15).
        amp_dtype: None picks bfloat16 on CPUs and on CUDA GPUs of compute capability 8.0+,
            else float16 (e.g. Colab's T4, Apple GPUs), which training pairs with a GradScaler.
        channels_last: NHWC memory layout for the model and inputs, which cuDNN's tensor-core
            and oneDNN's CPU convolutions prefer; often faster, not always (chapter 15
            measures it).
        check_finite_inputs: raise if an input batch holds NaN or Inf (a host sync per batch).

    Example:
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)  # a "segmentation model" of one layer
        >>> masks = torch.zeros(4, 4, 4, dtype=torch.long)  # class ids (B, H, W)
        >>> pairs = torch.utils.data.TensorDataset(torch.rand(4, 3, 4, 4), masks)
        >>> evaluator = Evaluator(model, torch.nn.CrossEntropyLoss(), device="cpu")
        >>> sorted(evaluator.evaluate(DataLoader(pairs, batch_size=2)))
        ['loss']
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        metrics: Sequence[Any] = (),
        device: str | torch.device | None = None,
        amp: bool | str = False,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        check_finite_inputs: bool = False,
    ) -> None:
        # a script started by torchrun joins its process group here, so W copies work as one
        joined = distributed.init_from_env(device=device)  # device="cpu": gloo on the CPU
        chosen = joined if device is None and joined else pick_device(device)
        self.device = distributed.local_device(chosen)
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.loss_fn, self.val_metrics = loss, list(metrics)
        self.amp = resolve_amp(amp, self.device)  # "auto": on only where 16-bit is native
        # bfloat16 on CPUs and where the GPU has it natively, else float16 (needs a scaler)
        self.amp_dtype, self.needs_scaler = amp_settings(self.device, amp_dtype)
        self.check_finite_inputs = check_finite_inputs
        self._input_checks = checks.FirstBatchChecks(loss, *self.val_metrics)

    def evaluate(
        self, data: DataLoader, max_batches: int | None = None, verbose: int = 0
    ) -> dict[str, float]:
        """Loss and metrics over ``data`` (model in eval mode, no gradients).

        Under data parallelism every process evaluates its own share and the results are
        summed: each sample counts once, whatever the dataset size.

        Args:
            data: a DataLoader yielding ``(inputs, target)``.
            max_batches: stop after this many batches, at least 1 (default: all).
            verbose: 1 prints the result.

        Returns:
            ``{"loss": ..., metric names: ...}`` as floats, aggregated over the whole data.
        """
        max_batches = checks.as_max_batches(max_batches)  # 0 would give NaN, not a score
        loader = self._eval_loader(data, "data")
        try:
            logs = self._run_eval(loader, max_batches)
        finally:
            self._input_checks.restore()
        if verbose:
            print(" ".join(f"{k}={v:.4f}" for k, v in logs.items()))
        return logs

    @staticmethod
    def _eval_loader(data: DataLoader, name: str) -> DataLoader:
        """``data`` checked (a non-empty DataLoader) and, under data parallelism, split."""
        checks.check_eval_loader(data, name)
        return distributed.eval_loader(data, name)

    @torch.no_grad()
    def _run_eval(self, loader: DataLoader, max_batches: int | None, callbacks: Any = None):
        """One pass without learning. With ``callbacks``, it is ``fit``'s validation: they
        hear the test hooks, and the keys get a ``val_`` prefix."""
        if callbacks is not None:
            callbacks.on_test_begin()
        self.model.eval()  # BatchNorm uses its running statistics
        for metric in self.val_metrics:
            metric.reset()
        running = RunningLoss.zero(self.device)
        for batch, (inputs, target) in enumerate(
            itertools.islice(self._pairs(loader), max_batches)
        ):
            self._input_checks.set(batch == 0)
            if callbacks is not None:
                callbacks.on_test_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            source = ("data" if callbacks is None else "validation_data", batch)
            logits, loss = self._forward(self.model, inputs, target, source)
            running.add(loss, len(target))
            for metric in self.val_metrics:
                metric.update(logits, target)
            if callbacks is not None and callbacks.listens("on_test_batch_end"):
                callbacks.on_test_batch_end(batch, {"loss": running.mean()})
        logs = self._epoch_logs(running, self.val_metrics)
        if callbacks is None:
            return logs
        callbacks.on_test_end(logs)
        return {f"val_{k}": v for k, v in logs.items()}

    def _pairs(self, batches: Iterable) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each batch as ``(inputs, target)``, or a clear error saying what was expected."""
        for item in batches:
            yield checks.batch_pair(item)

    def _epoch_logs(self, running: RunningLoss, metrics) -> dict[str, float]:
        """Sum over processes, then divide: the one host sync of a pass."""
        totals = torch.stack([running.sum, torch.tensor(float(running.count), device=self.device)])
        distributed.all_reduce_sum(totals)
        total_loss, total_count = totals.tolist()  # the host sync
        logs = {"loss": total_loss / total_count if total_count > 0 else math.nan}
        for metric in metrics:
            if distributed.is_distributed():
                metric.sync(distributed.all_reduce_sum)
            logs.update(metric.results())
        return logs

    @torch.no_grad()
    def predict(self, data: Iterable, max_batches: int | None = None) -> torch.Tensor:
        """Class scores for every input in ``data``, concatenated on the CPU (N, C, H, W).

        ``data`` may yield ``(inputs, target)`` pairs or bare input tensors; ``max_batches``
        (at least 1) stops early.
        """
        max_batches = checks.as_max_batches(max_batches)
        self.model.eval()
        outputs = []
        for item in itertools.islice(data, max_batches):
            inputs = item[0] if isinstance(item, (list, tuple)) else item
            inputs = self._to_device(inputs, None)[0]
            with self._autocast():
                outputs.append(self.model(inputs).float().cpu())
        return torch.cat(outputs) if outputs else torch.empty(0)

    def _forward(
        self,
        model: torch.nn.Module,
        inputs: torch.Tensor,
        target: torch.Tensor,
        source: tuple[str, int] | None = None,
    ):
        """Scores and loss of one mini-batch; ``source`` (argument name, mini-batch) names it
        in the clear error that replaces torch's when the data is at fault."""
        logits = None
        try:  # free until something is raised
            # autocast covers the forward pass and the loss only; backward runs outside it
            with self._autocast():
                logits = model(inputs)  # (B, C, H, W)
                loss = self.loss_fn(logits, target)
        except (IndexError, RuntimeError, ValueError) as err:
            self._raise_clear(err, inputs, target, logits, source)
        checks.check_loss_value(loss)  # one number per mini-batch (shape only: no host read)
        return logits, loss

    def _raise_clear(self, err: Exception, inputs, target, logits, source) -> NoReturn:
        """Raise the clear error that names the mini-batch and the fix for torch's ``err``
        when the data is at fault (``labpkg.loop.batch_errors``), else ``err`` itself."""
        clear = batch_errors.explain(err, inputs, target, logits, source, self.amp)
        if clear is None:
            raise err
        raise clear from err

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision (``torch.autocast``) if AMP is on; else no context at all, because
        building and entering a disabled autocast costs a few µs per mini-batch."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, inputs: torch.Tensor, target: torch.Tensor | None):
        # float64 images become float32, integer masks int64 (see checks.as_inputs/as_target)
        inputs = checks.as_inputs(inputs)
        if self.memory_format is torch.channels_last or inputs.device != self.device:
            inputs = self._move(inputs, self.memory_format)
        if self.check_finite_inputs and not torch.isfinite(inputs).all():
            raise ValueError("input batch holds NaN or Inf values (check_finite_inputs=True)")
        if target is not None:
            target = checks.as_target(target)
            target = target if target.device == self.device else self._move(target)
        return inputs, target

    def _move(self, tensor: torch.Tensor, layout=torch.preserve_format) -> torch.Tensor:
        """``tensor`` on the device, in ``layout``. Called only when it is elsewhere or must
        change layout: a ``.to`` with nothing to do still costs a tensor operation (the two of
        a mini-batch cost 0.6% of a tiny 2-conv model's training time, measured in place)."""
        # non_blocking overlaps the copy with compute, but only from pinned memory on CUDA
        return tensor.to(self.device, non_blocking=self.device.type == "cuda", memory_format=layout)

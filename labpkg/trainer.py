"""``Trainer``: the training loop, with counters that are the book's definitions.

One **epoch** is a pass over the training loader. It has ``epoch_length`` **mini-batches**; each
is forwarded and back-propagated. Every ``accumulate_grad_batches`` mini-batches the optimizer
makes one **update** (an *iteration* or *step*), counted by ``global_step``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from labpkg import checkpoint, checks, distributed
from labpkg.callbacks.base import Callback, CallbackList
from labpkg.callbacks.history import History
from labpkg.callbacks.progress import ProgbarLogger
from labpkg.devices import amp_settings, pick_device
from labpkg.losses import get_loss
from labpkg.state import TrainState

__all__ = ["TrainState", "Trainer"]


class Trainer:
    """Train, evaluate and predict with a segmentation model.

    Args:
        model: the network; it returns class scores (B, C, H, W).
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters.
        loss: ``loss(logits, target)`` returning a scalar, e.g. ``labpkg.DiceCELoss()``, or a
            name: ``"cross_entropy"``, ``"dice"``, ``"jaccard"``, ``"dice_ce"``.
        metrics: metric objects with ``update/results/reset`` (e.g. ``SegmentationMetrics``).
        device: None picks cuda, then mps, then cpu. Under ``torchrun`` the Trainer joins the
            process group itself and each process uses its own GPU (``cuda:LOCAL_RANK``).
        amp: mixed precision (autocast) for forward and loss (default False).
        amp_dtype: None picks bfloat16 where the hardware has it natively (CPUs, CUDA compute
            capability 8.0+), else float16 (e.g. Colab's T4), which adds a GradScaler.
        grad_clip_norm: clip the gradient norm to this value before each update (default off).
        accumulate_grad_batches: mini-batches per optimizer update (default 1).
        channels_last: NHWC memory layout for the model and inputs (faster convolutions on
            recent GPUs and on CPUs with bf16).
        check_finite_inputs: raise if an input batch holds NaN or Inf (a host sync per batch).

    Example:
        >>> from labpkg.models import UNet, UNetConfig
        >>> model = UNet(UNetConfig(base_width=4, depth=2, num_classes=2))
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> trainer = Trainer(model, opt, nn.CrossEntropyLoss(), device="cpu")
        >>> x, y = torch.rand(8, 3, 16, 16), torch.randint(0, 2, (8, 16, 16))
        >>> loader = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
        >>> _ = trainer.fit(loader, epochs=2, verbose=0)
        >>> trainer.state.global_step
        4
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | str,
        metrics: Sequence[Any] = (),
        device: str | torch.device | None = None,
        amp: bool = False,
        amp_dtype: torch.dtype | None = None,
        grad_clip_norm: float | None = None,
        accumulate_grad_batches: int = 1,
        channels_last: bool = False,
        check_finite_inputs: bool = False,
    ) -> None:
        if isinstance(loss, str):
            loss = get_loss(loss)  # "cross_entropy", "dice", "jaccard" or "dice_ce"
        checks.check_trainer_args(model, optimizer, loss, grad_clip_norm, accumulate_grad_batches)
        # a script started by torchrun joins its process group here, so W copies train as one
        joined = distributed.init_from_env()
        self.device = distributed.local_device(
            joined if device is None and joined else pick_device(device)
        )
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer, self.loss_fn = optimizer, loss
        self.metrics = list(metrics)
        # separate copies, so validation never mixes into the training epoch's numbers
        self.val_metrics = [copy.deepcopy(m) for m in self.metrics]
        self.amp = amp
        # bfloat16 where the hardware has it natively, else float16, which needs a GradScaler:
        # its range ends at 65504, so the scaler multiplies the loss up, then undoes it
        self.amp_dtype, needs_scaler = amp_settings(self.device, amp_dtype)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp and needs_scaler)
        self.grad_clip_norm = grad_clip_norm
        self.accumulate = accumulate_grad_batches
        self.check_finite_inputs = check_finite_inputs
        self.state = TrainState()
        self.history = History()
        self.callbacks = CallbackList([], self)
        self.train_loader: DataLoader | None = None
        self._ddp_model: nn.Module | None = None

    # ----------------------------------------------------------------------------- fit
    def fit(
        self,
        train: DataLoader,
        epochs: int = 1,
        validation_data: DataLoader | None = None,
        callbacks: Iterable[Callback] | None = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_freq: int = 1,
        verbose: int = 1,
        resume_from: str | None = None,
    ) -> History:
        """Train for ``epochs`` epochs and return the ``History`` of epoch logs.

        Args:
            train: the training DataLoader, yielding ``(inputs, target)``.
            epochs: index of the last epoch + 1 (Keras semantics with ``initial_epoch``).
            validation_data: a DataLoader evaluated after each ``validation_freq`` epochs;
                its logs get a ``val_`` prefix.
            callbacks: ``Callback`` objects, called in list order.
            initial_epoch: epoch to start at (0-based).
            steps_per_epoch: mini-batches per epoch, at most ``len(train)`` (quick runs).
            validation_freq: validate every this many epochs (default 1).
            verbose: 0 silent, 1 a progress bar, 2 one line per epoch.
            resume_from: a checkpoint written by ``save_checkpoint`` to continue from.

        Returns:
            The ``History`` (also ``trainer.history``). A KeyboardInterrupt ends training
            cleanly: ``on_train_end`` runs and the history so far is returned.
        """
        checks.check_fit_args(
            train, epochs, initial_epoch, steps_per_epoch, validation_freq, verbose
        )
        self.train_loader = distributed.distributed_loader(train)
        val_loader = validation_data and distributed.distributed_loader(validation_data)
        self.history = History()
        extra = [self.history] + ([ProgbarLogger(verbose)] if verbose else [])
        self.callbacks = CallbackList([*(callbacks or []), *extra], self)
        self.state.epochs, self.state.stop_training, self.state.interrupted = epochs, False, False
        self.state.epoch_length = steps_per_epoch or len(self.train_loader)
        self.callbacks.on_train_begin()
        if resume_from is not None:
            initial_epoch = self.load_checkpoint(resume_from)
        logs: dict[str, float] = {}
        try:
            for epoch in range(initial_epoch, epochs):
                self.state.epoch = epoch
                _set_epoch(self.train_loader, epoch)
                self.callbacks.on_epoch_begin(epoch)
                logs = self._train_one_epoch()
                if val_loader is not None and (epoch + 1) % validation_freq == 0:
                    logs.update(self._validate(val_loader))
                self.callbacks.on_epoch_end(epoch, logs)
                if self.state.stop_training:
                    break
        except KeyboardInterrupt:
            self.state.interrupted = self.state.stop_training = True
            warnings.warn("training interrupted: returning the history so far", stacklevel=2)
        self.callbacks.on_train_end(logs)
        return self.history

    def _train_one_epoch(self) -> dict[str, float]:
        """One pass over the training loader; returns the epoch logs (loss and metrics)."""
        model = self._parallel_model()
        model.train()
        for metric in self.metrics:
            metric.reset()
        self.optimizer.zero_grad(set_to_none=True)  # accumulation never leaks across epochs
        loss_sum = torch.zeros((), device=self.device)  # summed on device: no sync per batch
        count = 0  # samples: known on the host, no device work
        batches = itertools.islice(self.train_loader, self.state.epoch_length)
        for batch, (inputs, target) in enumerate(batches):
            self.state.batch = batch
            self.callbacks.on_train_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            updates = self._is_update_batch(batch)
            with self._no_sync(model, skip=not updates):  # DDP: all-reduce only on updates
                logits, loss = self._forward(model, inputs, target)
                # each mini-batch's loss is divided by its group's size: an update averages
                self.scaler.scale(loss / self._group_size(batch)).backward()
            if updates:
                self._optimizer_step()
            self._count(batch_size=len(target))
            loss_sum += loss.detach() * len(target)  # epoch loss: weighted by batch size
            count += len(target)
            for metric in self.metrics:
                metric.update(logits.detach(), target)
            self.callbacks.on_train_batch_end(batch, {"loss": loss_sum / count})
            if self.state.stop_training:
                break
        return self._epoch_logs(loss_sum, count, self.metrics)

    def _forward(self, model: nn.Module, inputs: torch.Tensor, target: torch.Tensor):
        # autocast covers the forward pass and the loss only; backward runs outside it
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            logits = model(inputs)  # (B, C, H, W)
            loss = self.loss_fn(logits, target)
        return logits, loss

    def _optimizer_step(self) -> None:
        if self.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        self.scaler.step(self.optimizer)  # skipped if float16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.global_step += 1

    def _count(self, batch_size: int) -> None:
        self.state.batches_seen += 1
        self.state.samples_seen += batch_size

    def _is_update_batch(self, batch: int) -> bool:
        """True if this mini-batch ends an accumulation group (or the epoch)."""
        return (batch + 1) % self.accumulate == 0 or batch + 1 == self.state.epoch_length

    def _group_size(self, batch: int) -> int:
        """Mini-batches in this batch's accumulation group (the last one may be smaller)."""
        start = batch - batch % self.accumulate
        return min(self.accumulate, self.state.epoch_length - start)

    # ----------------------------------------------------------------------- evaluate
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
        logs = self._run_eval(distributed.distributed_loader(data), max_batches, hooks=False)
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
        metrics = self._eval_metrics()
        loss_sum = torch.zeros((), device=self.device)
        count = 0
        for batch, (inputs, target) in enumerate(itertools.islice(loader, max_batches)):
            if hooks:
                self.callbacks.on_test_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            logits, loss = self._forward(self.model, inputs, target)
            loss_sum += loss * len(target)
            count += len(target)
            for metric in metrics:
                metric.update(logits, target)
            if hooks:
                self.callbacks.on_test_batch_end(batch, {"loss": loss_sum / count})
        return self._epoch_logs(loss_sum, count, metrics)

    def _eval_metrics(self) -> list[Any]:
        for metric in self.val_metrics:
            metric.reset()
        return self.val_metrics

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

    # ----------------------------------------------------------------------- helpers
    def _to_device(self, inputs: torch.Tensor, target: torch.Tensor | None):
        # non_blocking overlaps the copy with compute, but only from pinned memory on CUDA
        non_blocking = self.device.type == "cuda"
        inputs = inputs.to(self.device, non_blocking=non_blocking, memory_format=self.memory_format)
        if self.check_finite_inputs and not torch.isfinite(inputs).all():
            raise ValueError("input batch holds NaN or Inf values (check_finite_inputs=True)")
        if target is not None:
            target = target.to(self.device, non_blocking=non_blocking)
        return inputs, target

    def _parallel_model(self) -> nn.Module:
        """The model wrapped in DistributedDataParallel when a process group is initialised."""
        if not distributed.is_distributed():
            return self.model
        if self._ddp_model is None:
            device_ids = [self.device.index or 0] if self.device.type == "cuda" else None
            self._ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids)
        return self._ddp_model

    def _no_sync(self, model: nn.Module, skip: bool):
        if skip and isinstance(model, nn.parallel.DistributedDataParallel):
            return model.no_sync()
        return contextlib.nullcontext()

    # -------------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to resume after the current epoch, as tensors and plain values."""
        return checkpoint.trainer_state(self)

    def save_checkpoint(self, path: str) -> None:
        """Write ``checkpoint_state()`` to ``path`` atomically (process 0 only)."""
        if distributed.rank() == 0:
            checkpoint.save_checkpoint(self.checkpoint_state(), path)

    def load_checkpoint(self, path: str) -> int:
        """Restore model, optimizer, scaler, counters, callbacks and RNG from ``path``.

        Returns:
            The 0-based epoch to continue from, the one after the saved epoch.
        """
        return checkpoint.restore_trainer(self, path)


def _set_epoch(loader: DataLoader, epoch: int) -> None:
    # DistributedSampler shuffles with seed + epoch: without this, every epoch has one order
    for part in (loader.sampler, loader.dataset):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)

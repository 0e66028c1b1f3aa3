"""``Trainer``: the training loop, with counters that are the book's definitions.

One **epoch** is a pass over the training loader: ``batches_per_epoch`` **mini-batches**, each
forwarded and back-propagated. Every ``accumulate_grad_batches`` mini-batches the optimizer
makes one **update** (the book's *iteration*, or *step*), counted by ``global_step``.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from labpkg import checkpoint, checks, distributed
from labpkg.callbacks.base import Callback, CallbackList
from labpkg.callbacks.history import History
from labpkg.callbacks.loggers import ProgbarLogger
from labpkg.devices import amp_settings, pick_device
from labpkg.evaluation import Evaluator
from labpkg.losses import get_loss
from labpkg.metrics import Metric
from labpkg.state import TrainState

__all__ = ["TrainState", "Trainer"]


class Trainer(Evaluator):
    """Train, evaluate and predict with a segmentation model.

    Args:
        model: the network; it returns class scores (B, C, H, W).
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters.
        loss: ``loss(logits, target)`` returning a scalar, e.g. ``labpkg.DiceCELoss()``, or a
            name: ``"cross_entropy"``, ``"dice"``, ``"jaccard"``, ``"dice_ce"``.
        metrics: objects that follow the ``labpkg.metrics.Metric`` protocol
            (``reset/update/results/sync``), e.g. ``SegmentationMetrics``.
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

    Losses and metrics that check their inputs (``validate_args``: labels in range, which
    needs a host read) check the first mini-batch of every epoch and of every evaluation; the
    Trainer turns the checks off for the rest, so the loop itself never waits for the device.

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
        metrics: Sequence[Metric] = (),
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
        checks.check_trainer_args(
            model, optimizer, loss, metrics, grad_clip_norm, accumulate_grad_batches
        )
        # a script started by torchrun joins its process group here, so W copies train as one
        joined = distributed.init_from_env()
        chosen = joined if device is None and joined else pick_device(device)
        self.device = distributed.local_device(chosen)
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
        self._input_checks = checks.FirstBatchChecks(loss, *self.metrics, *self.val_metrics)
        self._applied_steps = 0  # optimizer steps that really ran (a skipped one does not)
        optimizer.register_step_post_hook(self._count_applied_step)

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
            steps_per_epoch: mini-batches per epoch, at most ``len(train)`` (quick runs). Keras's
                name: its "steps" here are mini-batches, not optimizer updates.
            validation_freq: validate every this many epochs (default 1).
            verbose: 0 silent, 1 a progress bar, 2 one line per epoch.
            resume_from: a checkpoint written by ``ModelCheckpoint`` to continue from.

        Returns:
            The ``History`` (also ``trainer.history``). A KeyboardInterrupt ends training
            cleanly: ``on_train_end`` runs and the history so far is returned.
        """
        val_loader, first_epoch = self._prepare_fit(
            train, epochs, validation_data, callbacks, initial_epoch,
            steps_per_epoch, validation_freq, verbose, resume_from,
        )  # fmt: skip
        logs: dict[str, float] = {}
        try:
            for epoch in range(first_epoch, epochs):
                if self.state.stop_training:  # set by a callback: no further epoch starts
                    break
                self.state.epoch = epoch
                distributed.set_epoch(self.train_loader, epoch)  # a new shuffle each epoch
                self.callbacks.on_epoch_begin(epoch)
                logs = self._train_one_epoch()
                if val_loader is not None and (epoch + 1) % validation_freq == 0:
                    logs.update(self._validate(val_loader))
                self.callbacks.on_epoch_end(epoch, logs)
        except KeyboardInterrupt:
            self.state.interrupted = self.state.stop_training = True
            warnings.warn("training interrupted: returning the history so far", stacklevel=2)
        finally:
            self._input_checks.restore()
        self.callbacks.on_train_end(logs)
        return self.history

    def _prepare_fit(
        self, train, epochs, validation_data, callbacks, initial_epoch,
        steps_per_epoch, validation_freq, verbose, resume_from,
    ) -> tuple[DataLoader | None, int]:  # fmt: skip
        """Check the arguments, shard the data, set up callbacks and state; maybe resume."""
        checks.check_fit_args(
            train, epochs, initial_epoch, steps_per_epoch, validation_freq, verbose
        )
        # under data parallelism each process reads its own share; otherwise unchanged
        self.train_loader = distributed.distributed_loader(train)
        val_loader = None
        if validation_data is not None:
            val_loader = distributed.distributed_loader(validation_data)
        self.history = History()  # last, with the progress bar: they see every callback's keys
        extra = [self.history] + ([ProgbarLogger(verbose)] if verbose else [])
        self.callbacks = CallbackList([*(callbacks or []), *extra], self)
        state = self.state
        state.epochs, state.stop_training, state.interrupted = epochs, False, False
        state.batches_per_epoch = steps_per_epoch or len(self.train_loader)
        self.callbacks.on_train_begin()
        if resume_from is not None:
            # after on_train_begin, which resets callbacks (patience, best): the restored
            # state must land on top of that reset, not be wiped by it
            initial_epoch = self.restore(resume_from)
        return val_loader, initial_epoch

    def _train_one_epoch(self) -> dict[str, float]:
        """One pass over the training loader: chapter 5's five steps for every mini-batch."""
        model, state = distributed.wrap_model(self.model, self.device), self.state
        model.train()  # BatchNorm uses the statistics of each mini-batch
        for metric in self.metrics:
            metric.reset()
        self.optimizer.zero_grad(set_to_none=True)  # accumulation never leaks across epochs
        loss_sum, count = torch.zeros((), device=self.device), 0  # summed on the device
        for batch, (inputs, target) in enumerate(self._batches(self.train_loader)):
            state.batch = batch
            self._input_checks.set(batch == 0)  # a host read on the first mini-batch only
            self.callbacks.on_train_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            ends_group = self._ends_update_group(batch)
            with distributed.sync_gradients(model, now=ends_group):
                logits, loss = self._forward(model, inputs, target)  # 1. forward, 2. loss
                # accumulation: each mini-batch adds its share of the group's mean gradient
                share = loss / self._group_size(batch)
                self.scaler.scale(share).backward()  # 3. backward (scaled up under float16)
            state.batches_seen += 1
            state.samples_seen += len(target)
            if ends_group:
                self._optimizer_step()  # 4. optimizer step: one update, one iteration
                state.global_step += 1
            loss_sum += loss.detach() * len(target)  # 5. metrics and callbacks
            count += len(target)
            for metric in self.metrics:
                metric.update(logits.detach(), target)
            self.callbacks.on_train_batch_end(batch, {"loss": loss_sum / count})
            if state.stop_training:
                break
        return self._epoch_logs(loss_sum, count, self.metrics)

    def _batches(self, loader: DataLoader) -> Iterable:
        return itertools.islice(loader, self.state.batches_per_epoch)

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
        applied = self._applied_steps
        self.scaler.step(self.optimizer)  # skipped if float16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self._applied_steps == applied:
            self.state.skipped_updates += 1

    def _count_applied_step(self, *_: Any) -> None:
        self._applied_steps += 1

    def _ends_update_group(self, batch: int) -> bool:
        """True if this mini-batch ends an accumulation group (or the epoch)."""
        return (batch + 1) % self.accumulate == 0 or batch + 1 == self.state.batches_per_epoch

    def _group_size(self, batch: int) -> int:
        """Mini-batches in this batch's accumulation group (the last one may be smaller)."""
        start = batch - batch % self.accumulate
        return min(self.accumulate, self.state.batches_per_epoch - start)

    # -------------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything needed to resume after the current epoch, as tensors and plain values."""
        return checkpoint.trainer_state(self)

    def save_checkpoint(self, path: str) -> None:
        """Write ``checkpoint_state()`` to the file ``path`` atomically (process 0 only)."""
        if distributed.rank() == 0:
            checkpoint.save_checkpoint(self.checkpoint_state(), path)

    def restore(self, path: str) -> int:
        """Restore model, optimizer, scaler, counters, callbacks and RNG from a checkpoint file.

        (``labpkg.load_checkpoint(path)`` only *reads* a file and returns its dict.)

        Returns:
            The 0-based epoch to continue from, the one after the saved epoch.
        """
        return checkpoint.restore_trainer(self, path)

    def load_checkpoint(self, path: str) -> int:
        """Deprecated name of ``restore`` (``labpkg.load_checkpoint`` reads a file instead)."""
        warnings.warn("Trainer.load_checkpoint is now Trainer.restore", FutureWarning, 2)
        return self.restore(path)

"""``Trainer``: the training loop, with counters that are the book's definitions.

One **epoch** is a pass over the training loader: ``batches_per_epoch`` **mini-batches**, each
forwarded and back-propagated. Every ``accumulate_grad_batches`` mini-batches the optimizer
makes one **update** (the book's *iteration*, or *step*), counted by ``global_step``.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from labpkg import checkpoint, checks, counting, distributed, restore, resume, update
from labpkg.callbacks.base import Callback, CallbackList
from labpkg.callbacks.history import History
from labpkg.callbacks.loggers import ProgbarLogger
from labpkg.checkpoint_requests import Checkpoints
from labpkg.devices import amp_settings, pick_device, resolve_amp
from labpkg.evaluation import Evaluator, RunningLoss
from labpkg.interrupts import DeferredInterrupt
from labpkg.losses import get_loss
from labpkg.metrics import Metric
from labpkg.resume import Position, ResumePoint
from labpkg.state import TrainState
from labpkg.update import AppliedSteps

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
            process group itself and each process uses its own GPU (``cuda:LOCAL_RANK``);
            ``"cpu"`` keeps every process on the CPU (gloo), also where GPUs exist.
        amp: mixed precision (autocast) for forward and loss: False (default), True, or
            ``"auto"``, which turns it on where the 16-bit type is native: on GPUs, and on
            CPUs with native bfloat16 (``labpkg.devices.amp_is_fast``; a CPU that emulates it
            ran 5 to 8× slower than float32 in chapter 15).
        amp_dtype: None picks bfloat16 on CPUs and on CUDA GPUs of compute capability 8.0+,
            else float16 (e.g. Colab's T4, Apple GPUs), which adds a GradScaler.
        grad_clip_norm: clip the gradient norm to this value before each update (default off).
        accumulate_grad_batches: mini-batches per optimizer update (default 1).
        channels_last: NHWC memory layout for the model and inputs, which cuDNN's tensor-core
            and oneDNN's CPU convolutions prefer; often faster, not always (chapter 15
            measures it).
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
        amp: bool | str = False,
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
        joined = distributed.init_from_env(device=device)  # device="cpu": gloo on the CPU
        chosen = joined if device is None and joined else pick_device(device)
        self.device = distributed.local_device(chosen)
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer, self.loss_fn = optimizer, loss
        self.metrics = list(metrics)
        # separate copies, so validation never mixes into the training epoch's numbers
        self.val_metrics = [copy.deepcopy(m) for m in self.metrics]
        self.amp = resolve_amp(amp, self.device)  # "auto": on only where 16-bit is native
        # bfloat16 on CPUs and where the GPU has it natively, else float16, which needs a
        # GradScaler: small gradients underflow in float16, so the scaler multiplies the loss
        # up, then undoes it
        self.amp_dtype, needs_scaler = amp_settings(self.device, amp_dtype)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and needs_scaler)
        self.grad_clip_norm = None if grad_clip_norm is None else float(grad_clip_norm)
        self.accumulate = checks.as_int(accumulate_grad_batches, "accumulate_grad_batches", 1)
        self.check_finite_inputs = check_finite_inputs
        self.state = TrainState()
        self.history = History()
        self.callbacks = CallbackList([], self)
        self.checkpoints = Checkpoints(self)  # what ModelCheckpoint asks to save
        self.train_loader: DataLoader | None = None
        self.val_loader: DataLoader | None = None
        self.running_loss = RunningLoss.zero(self.device)  # the epoch in progress
        self.epoch_start: dict | None = None  # the random state that drew this epoch's order
        self.resume_progress: dict | None = None  # set on resume for a mid-epoch resume
        self.restored: dict | None = None  # what restore() left for the next fit to continue
        self.position: Position | None = Position(0, -1, complete=False)  # where training is
        self._fitting = self._landed = False
        self._input_checks = checks.FirstBatchChecks(loss, *self.metrics, *self.val_metrics)
        self._interrupt = DeferredInterrupt()
        self.applied_steps = AppliedSteps(optimizer)  # a step the GradScaler skips is not one

    # ----------------------------------------------------------------------------- fit
    def fit(
        self,
        train: DataLoader,
        epochs: int = 1,
        validation_data: DataLoader | None = None,
        callbacks: Iterable[Callback] | None = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_freq: int | Collection[int] = 1,
        verbose: int = 1,
        resume_from: str | None = None,
        strict_resume: bool = True,
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
            validation_freq: validate after every this many epochs (default 1), or, as in
                Keras, after each 1-based epoch of a list (``[4, 5, 6]``).
            verbose: 0 silent, 1 a progress bar, 2 one line per epoch.
            resume_from: a checkpoint written by ``ModelCheckpoint`` or ``save_checkpoint`` to
                continue from, exactly where it stands. Without it, a fit after
                ``restore(path)`` continues from that file.
            strict_resume: True (default) refuses a resume that cannot be exact (another
                loader, accumulation, optimizer class, precision: ``labpkg.fingerprint``),
                naming what changed; False warns and continues from the next epoch boundary.
                An optimizer of another class is refused either way: its state cannot load.

        Returns:
            The ``History`` (also ``trainer.history``). A KeyboardInterrupt ends training
            cleanly: ``on_train_end`` runs and the history so far is returned.
        """
        val_loader, start = self._prepare_fit(
            train, epochs, validation_data, callbacks, initial_epoch,
            steps_per_epoch, validation_freq, verbose, resume_from, strict_resume,
        )  # fmt: skip
        logs: dict[str, float] = {}
        self._fitting, self._landed = True, False
        try:
            with self._interrupt:  # Ctrl-C waits for the end of the current mini-batch
                for epoch in range(start.epoch, self.state.epochs):
                    if self._interrupt.requested:
                        self._stop_at(self.position)
                    if self.state.stop_training:  # set by a callback: no further epoch starts
                        break
                    self.state.epoch = epoch
                    distributed.set_epoch(self.train_loader, epoch)  # a new shuffle each epoch
                    if epoch > start.epoch or start.batch == 0:  # a resumed epoch had begun
                        self.callbacks.on_epoch_begin(epoch)
                    logs = self._train_one_epoch()
                    if val_loader is not None and checks.validates_after(epoch, validation_freq):
                        logs.update(self._validate(val_loader))
                    self.callbacks.on_epoch_end(epoch, logs)  # then: requested checkpoints
                    self.position = Position(epoch, self.state.batch, complete=True)
        except KeyboardInterrupt:
            self.state.interrupted = True
            self.position = self.position if self._landed else None  # mid-batch: unknown
            warnings.warn("training interrupted: returning the history so far", stacklevel=2)
        except BaseException:
            self.position = None  # somewhere inside a mini-batch or a hook
            raise
        finally:
            self._fitting = False
            self.checkpoints.drop()  # asked for by a hook that did not finish
            self._input_checks.restore()
        self.callbacks.on_train_end(logs)
        return self.history

    def _prepare_fit(
        self, train, epochs, validation_data, callbacks, initial_epoch,
        steps_per_epoch, validation_freq, verbose, resume_from, strict_resume,
    ) -> tuple[DataLoader | None, ResumePoint]:  # fmt: skip
        """Check the arguments, shard the data, set up callbacks and state; maybe resume."""
        epochs, initial_epoch, steps_per_epoch, validation_freq = checks.check_fit_args(
            train, epochs, initial_epoch, steps_per_epoch, validation_freq, verbose
        )
        # under data parallelism each process reads its own share; otherwise unchanged
        self.train_loader = distributed.distributed_loader(train)
        val = validation_data  # each sample once per validation, also under data parallelism
        self.val_loader = None if val is None else self._eval_loader(val, "validation_data")
        self.history = History()  # last, with the progress bar: they see every callback's keys
        extra = [self.history] + ([ProgbarLogger(verbose)] if verbose else [])
        self.callbacks = CallbackList([*checks.check_callbacks(callbacks), *extra], self)
        state = self.state
        state.epochs, state.stop_training, state.interrupted = epochs, False, False
        state.diverged, self.resume_progress = False, None
        state.batches_per_epoch = steps_per_epoch or len(self.train_loader)
        self.callbacks.on_train_begin()
        start = ResumePoint(initial_epoch, 0)
        if resume_from is not None or self.restored is not None:
            # after on_train_begin, which resets callbacks (patience, best): the restored
            # state must land on top of that reset, not be wiped by it
            start = restore.resume_fit(self, resume_from, strict_resume, epochs, initial_epoch)
        # a resumed epoch's sums come back when it starts; an interrupt before that is mid-air
        self.position = Position(start.epoch, -1, False) if start.batch == 0 else None
        return self.val_loader, start

    def _train_one_epoch(self) -> dict[str, float]:
        """One pass over the training loader: the five steps of the training-loop chapter."""
        model, state = distributed.wrap_model(self.model, self.device), self.state
        model.train()  # BatchNorm uses the statistics of each mini-batch
        first = self._start_epoch()  # fresh sums and gradients, or those of a resumed epoch
        seen = state.batches_seen
        for batch, (inputs, target) in enumerate(self._epoch_batches(first), start=first):
            state.batch = batch
            self._input_checks.set(batch == first)  # a host read on the first mini-batch only
            self.callbacks.on_train_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            ends_group = counting.ends_update(batch, self.accumulate, state.batches_per_epoch)
            with distributed.sync_gradients(model, now=ends_group):
                # 1. forward, 2. loss ("mini-batch 3 of train" in an error about the data)
                logits, loss = self._forward(model, inputs, target, ("train", batch))
                # accumulation: each mini-batch adds its share of the group's mean gradient
                # (a group of one: the loss itself, as dividing by 1 costs an op and a graph node)
                group = counting.group_size(batch, self.accumulate, state.batches_per_epoch)
                share = loss if group == 1 else loss / group
                self.scaler.scale(share).backward()  # 3. backward (scaled up under float16)
            state.batches_seen += 1
            state.samples_seen += len(target)
            if ends_group:
                self._optimizer_step(batch)  # 4. optimizer step: one update, one iteration
                state.global_step += 1
            self.running_loss.add(loss, len(target))  # 5. metrics and callbacks
            for metric in self.metrics:
                metric.update(logits.detach(), target)
            self.callbacks.on_train_batch_end(batch, {"loss": self.running_loss.mean()})
            if self._interrupt.requested:  # a Ctrl-C during this mini-batch lands here
                self._stop_at(Position(state.epoch, batch, complete=False))
            if state.stop_training:
                break
        if not state.stop_training:  # a stream may run out before steps_per_epoch
            update.finish_short_epoch(self, first + state.batches_seen - seen)
        return self._finish_epoch()

    def _start_epoch(self) -> int:
        """Zero the epoch's sums (or restore a resumed epoch's); the first mini-batch to run."""
        self.optimizer.zero_grad(set_to_none=True)  # accumulation never leaks across epochs
        for metric in self.metrics:
            metric.reset()
        self.running_loss = RunningLoss.zero(self.device)
        if self.resume_progress is None:
            return 0
        return resume.continue_epoch(self)

    def _epoch_batches(self, first: int) -> Iterable:
        """This epoch's mini-batches from number ``first`` on, as (inputs, target) pairs."""
        if first == 0:  # the random state that draws the order, kept for mid-epoch checkpoints
            self.epoch_start = resume.epoch_start_state(self.train_loader)
            batches = iter(self.train_loader)
        else:  # a resumed epoch: its order drawn again, the mini-batches that ran skipped
            batches = resume.replay_epoch(self, first)
        return self._pairs(itertools.islice(batches, self.state.batches_per_epoch - first))

    def _finish_epoch(self) -> dict[str, float]:
        logs = self._epoch_logs(self.running_loss, self.metrics)
        # a NaN or infinite loss or weight: the epoch can be no one's "best", nor be saved
        self.state.diverged = not checks.is_finite(logs["loss"], self.model)
        return logs

    def _optimizer_step(self, batch: int | None = None) -> None:
        """One update: unscale, ``on_after_backward``, clip, ``on_before_optimizer_step``,
        step, zero the gradients (``labpkg.update``; no hooks when ``batch`` is None)."""
        update.optimizer_update(self, batch)

    def _stop_at(self, position: Position) -> None:
        """End ``fit`` for a held Ctrl-C here, at ``position``, a point it can continue from."""
        self.position, self._landed = position, True
        self._interrupt.check()  # raises KeyboardInterrupt

    # -------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path: str) -> None:
        """Write where training stands to the file ``path`` atomically (process 0 only), so
        that ``fit(..., resume_from=path)`` trains exactly what is left (see
        ``labpkg.resume.position_now``: before any fit, epoch 0; after a Ctrl-C, the rest of
        the epoch it stopped in)."""
        saved = resume.trainer_state(self, resume.position_now(self))
        if distributed.rank() == 0:
            checkpoint.save_checkpoint(saved, path)

    def restore(self, path: str, strict: bool = True) -> ResumePoint:
        """Load model, optimizer, scaler and counters from a checkpoint file, all checked
        first; the next ``fit`` continues from it (``labpkg.restore``).

        Args:
            path: a file written by ``ModelCheckpoint`` or ``save_checkpoint``.
            strict: False accepts a checkpoint taken under other conditions (accumulation,
                precision, processes; in the next ``fit``, the loader) with a warning; that
                ``fit`` then continues from the next epoch boundary. Never another optimizer.

        Returns:
            The ``ResumePoint`` ``(epoch, batch)``: the first mini-batch not yet run.
        """
        return restore.restore_trainer(self, path, strict)

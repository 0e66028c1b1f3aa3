"""``Trainer``: the training loop, with counters that are the book's definitions.

One **epoch** is a pass over the training loader: ``batches_per_epoch`` **mini-batches**, each
forwarded and back-propagated (``train_step``). Every ``accumulate_grad_batches`` mini-batches
the optimizer makes one **update** (the book's *iteration*, or *step*; ``optimizer_step``),
counted by ``global_step``. Read top to bottom: ``fit``, ``_train_epoch``, ``train_step``,
``optimizer_step``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from labpkg.callbacks.base import Callback, CallbackList
from labpkg.callbacks.history import History
from labpkg.callbacks.loggers import ProgbarLogger
from labpkg.core import checks, counting, distributed
from labpkg.core.checkpoint import save_checkpoint
from labpkg.loop import resume, update
from labpkg.loop.checkpoint_requests import CheckpointQueue
from labpkg.loop.evaluation import Evaluator, RunningLoss
from labpkg.loop.interrupts import DeferredInterrupt, fitting
from labpkg.loop.restore import PendingResume, restore_trainer, resume_fit
from labpkg.loop.resume import EpochInProgress, Position, ResumePoint
from labpkg.loop.state import TrainState
from labpkg.loop.update import AppliedSteps
from labpkg.nn.losses import get_loss
from labpkg.nn.metrics import Metric

__all__ = ["Trainer"]


class Trainer(Evaluator):
    """Train, evaluate and predict with a segmentation model.

    Args:
        model, loss, metrics, device, amp, amp_dtype, channels_last, check_finite_inputs: as
            for ``labpkg.loop.evaluation.Evaluator`` (``metrics`` are the training epoch's; the
            validation gets copies of them).
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters.
        grad_clip_norm: clip the gradient norm to this value before each update (default off).
        accumulate_grad_batches: mini-batches per optimizer update (default 1).

    Losses and metrics that check their inputs (``validate_args``: labels in range, which
    needs a host read) check the first mini-batch of every epoch and of every evaluation; the
    Trainer turns the checks off for the rest, so the loop itself never waits for the device.

    Example:
        >>> from labpkg.nn.models import UNet, UNetConfig
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
        loss = get_loss(loss) if isinstance(loss, str) else loss  # e.g. "dice_ce"
        checks.check_trainer_args(
            model, optimizer, loss, metrics, grad_clip_norm, accumulate_grad_batches
        )
        # validation gets copies, so it never mixes into the training epoch's numbers
        super().__init__(model, loss, [copy.deepcopy(m) for m in metrics], device, amp,
                         amp_dtype, channels_last, check_finite_inputs)  # fmt: skip
        self.optimizer, self.metrics = optimizer, list(metrics)
        # float16 needs a GradScaler: small gradients underflow, so it scales the loss up
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and self.needs_scaler)
        self.grad_clip_norm = None if grad_clip_norm is None else float(grad_clip_norm)
        self.accumulate = checks.as_int(accumulate_grad_batches, "accumulate_grad_batches", 1)
        self.state, self.history = TrainState(), History()
        self.callbacks = CallbackList([], self)
        self.checkpoint_queue = CheckpointQueue(self)  # the files callbacks ask for
        self.train_loader: DataLoader | None = None
        self.val_loader: DataLoader | None = None
        self.train_model: nn.Module = self.model  # in fit, under data parallelism: DDP
        self.running_loss = RunningLoss.zero(self.device)  # the epoch in progress
        self.epoch_rng: dict | None = None  # the random state that drew this epoch's order
        self.epoch_in_progress: EpochInProgress | None = None  # a mid-epoch resume's epoch
        self.pending_resume: PendingResume | None = None  # restore()'s, for the next fit
        self.position: Position | None = Position(0, -1, complete=False)  # where training is
        self._fitting = self._landed = False
        self._input_checks = checks.FirstBatchChecks(loss, *self.metrics, *self.val_metrics)
        self._interrupt = DeferredInterrupt()
        self._applied_steps = AppliedSteps(optimizer)  # a step the GradScaler skips is not one

    # ----------------------------------------------------------------------------- fit
    def fit(
        self,
        train: DataLoader,
        epochs: int = 1,
        validation_data: DataLoader | None = None,
        callbacks: Iterable[Callback] | None = None,
        initial_epoch: int = 0,
        batches_per_epoch: int | None = None,
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
            batches_per_epoch: mini-batches per epoch, at most ``len(train)`` (quick runs;
                required for a loader without a length).
            validation_freq: validate after every this many epochs (default 1), or, as in
                Keras, after each 1-based epoch of a list (``[4, 5, 6]``).
            verbose: 0 silent, 1 a progress bar, 2 one line per epoch.
            resume_from: a checkpoint written by ``ModelCheckpoint`` or
                ``save_training_state`` to continue from, exactly where it stands. Without
                it, a fit after ``restore(path)`` continues from that file.
            strict_resume: True (default) refuses a resume that cannot be exact (another
                loader, accumulation, optimizer class, precision: ``labpkg.loop.fingerprint``),
                naming what changed; False warns and continues from the next epoch boundary.
                An optimizer of another class is refused either way: its state cannot load.

        Returns:
            The ``History`` (also ``trainer.history``). A KeyboardInterrupt ends training
            cleanly: ``on_train_end`` runs and the history so far is returned.
        """
        epochs, initial_epoch, batches_per_epoch, validation_freq = checks.check_fit_args(
            train, epochs, initial_epoch, batches_per_epoch, validation_freq, verbose
        )
        self._set_up_fit(train, validation_data, callbacks, verbose)
        self.state.start_fit(epochs, batches_per_epoch or len(self.train_loader))
        self.callbacks.on_train_begin()
        start = self._resume(resume_from, strict_resume, initial_epoch)
        logs: dict[str, float] = {}
        with fitting(self):  # Ctrl-C waits for the end of the current mini-batch; DDP
            for epoch in range(start.epoch, epochs):
                if self._interrupt.requested:
                    self._stop_at(self.position)
                if self.state.stop_training:  # set by a callback: no further epoch starts
                    break
                logs = self._train_epoch(epoch)
                if self.val_loader is not None and checks.validates_after(epoch, validation_freq):
                    logs.update(self._run_eval(self.val_loader, None, self.callbacks))
                self.callbacks.on_epoch_end(epoch, logs)
                self.checkpoint_queue.write(complete=True)  # the files callbacks asked for
                self.position = Position(epoch, self.state.batch, complete=True)
        self.callbacks.on_train_end(logs)
        return self.history

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training loader: the loop, its counters and its hooks."""
        state = self.state
        state.epoch = epoch
        distributed.set_epoch(self.train_loader, epoch)  # a new shuffle each epoch
        if self.epoch_in_progress is None:  # a resumed epoch had its on_epoch_begin
            self.callbacks.on_epoch_begin(epoch)
        self.train_model.train()  # BatchNorm uses the statistics of each mini-batch
        first, batches = resume.epoch_batches(self)  # from 0, or where a checkpoint left off
        seen = state.batches_seen
        for batch, (inputs, target) in enumerate(self._pairs(batches), start=first):
            state.batch = batch
            self._input_checks.set(batch == first)  # a host read on the first mini-batch only
            self.callbacks.on_train_batch_begin(batch)
            inputs, target = self._to_device(inputs, target)
            logits, loss = self.train_step(inputs, target, batch)  # steps 1 to 4
            self.running_loss.add(loss, len(target))  # 5. metrics and callbacks
            for metric in self.metrics:
                metric.update(logits.detach(), target)
            if self.callbacks.listens("on_train_batch_end"):  # logs only for a reader
                self.callbacks.on_train_batch_end(batch, {"loss": self.running_loss.mean()})
            self.checkpoint_queue.write(complete=False)  # the files callbacks asked for
            if self._interrupt.requested:  # a Ctrl-C during this mini-batch lands here
                self._stop_at(Position(epoch, batch, complete=False))
            if state.stop_training:
                break
        else:  # a stream may run out before batches_per_epoch
            update.finish_short_epoch(self, first + state.batches_seen - seen)
        logs = self._epoch_logs(self.running_loss, self.metrics)  # the one host sync
        state.check_divergence(logs["loss"], self.model.parameters())  # NaN: never "best"
        return logs

    def train_step(
        self, inputs: torch.Tensor, target: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One mini-batch: forward, loss, backward, and the update if it ends its group.

        Args:
            inputs: images (B, C, H, W) on the device.
            target: masks (B, H, W) of class ids.
            batch: the mini-batch's 0-based index in the epoch.

        Returns:
            The scores (B, C, H, W) and the loss (a 0-d tensor, still on the device).
        """
        model, state = self.train_model, self.state
        per_epoch = state.batches_per_epoch
        group = counting.group_size(batch, self.accumulate, per_epoch)  # 1: no accumulation
        ends_group = counting.ends_update(batch, self.accumulate, per_epoch)
        logits = None
        with distributed.sync_gradients(model, now=ends_group):  # DDP: at updates only
            try:
                with self._autocast():  # AMP: autocast (convolutions in 16 bits)
                    logits = model(inputs)  # 1. forward: scores (B, C, H, W)
                    loss = self.loss_fn(logits, target)  # 2. loss: one number
            except (IndexError, RuntimeError, ValueError) as err:  # "mini-batch 3 of train"
                self._raise_clear(err, inputs, target, logits, ("train", batch))
            checks.check_loss_value(loss)  # one number (its shape only: no host read)
            share = loss if group == 1 else loss / group  # each adds its share of the mean
            self.scaler.scale(share).backward()  # 3. backward (scaled up under float16)
        state.batches_seen += 1
        state.samples_seen += len(target)
        if ends_group:
            self.optimizer_step(batch)  # 4. optimizer step: one update, one iteration
        return logits, loss

    def optimizer_step(self, batch: int) -> None:
        """One update from the gradient summed since the last (the order: ``labpkg.loop.update``).

        Args:
            batch: the 0-based mini-batch that ends the accumulation group (for the hooks).
        """
        optimizer, scaler = self.optimizer, self.scaler
        scaler.unscale_(optimizer)  # float16: the true gradient (else a no-op)
        self.callbacks.on_after_backward(batch)  # the group's gradient, not yet clipped
        if self.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        self.callbacks.on_before_optimizer_step(batch)  # the gradient the step applies
        if scaler.is_enabled():  # float16: the step is skipped if the gradients overflowed
            self._scaled_step()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # the next group starts from nothing
        self.state.global_step += 1
        self.callbacks.on_update_end(self.state.global_step)

    def _scaled_step(self) -> None:
        applied = self._applied_steps.count
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.state.skipped_updates += self._applied_steps.count == applied

    # ------------------------------------------------------------ around the loop
    def _set_up_fit(self, train, validation_data, callbacks, verbose: int) -> None:
        """Shard the data under data parallelism; the callbacks, History and progress bar."""
        self.train_loader = distributed.distributed_loader(train)  # each process its share
        val = validation_data  # each sample once per validation, also under data parallelism
        self.val_loader = None if val is None else self._eval_loader(val, "validation_data")
        self.history = History()  # last, with the progress bar: they see every callback's keys
        extra = [self.history] + ([ProgbarLogger(verbose)] if verbose else [])
        self.callbacks = CallbackList([*checks.check_callbacks(callbacks), *extra], self)
        self.epoch_in_progress = None

    def _resume(self, resume_from: str | None, strict: bool, initial_epoch: int) -> ResumePoint:
        """Where this fit starts: ``initial_epoch``, or a checkpoint's position."""
        start = ResumePoint(initial_epoch, 0)
        if resume_from is not None or self.pending_resume is not None:
            # after on_train_begin, which resets callbacks (patience, best): the restored
            # state must land on top of that reset, not be wiped by it
            start = resume_fit(self, resume_from, strict, initial_epoch)
        # a resumed epoch's sums come back when it starts; an interrupt before that is mid-air
        self.position = Position(start.epoch, -1, False) if start.batch == 0 else None
        return start

    def _stop_at(self, position: Position) -> None:
        """End ``fit`` for a held Ctrl-C here, at ``position``, a point it can continue from."""
        self.position, self._landed = position, True
        self._interrupt.check()  # raises KeyboardInterrupt

    # -------------------------------------------------------------------- checkpoints
    def save_training_state(self, path: str) -> None:
        """Write where training stands to the checkpoint file ``path`` atomically (process 0
        only), so that ``fit(..., resume_from=path)`` trains exactly what is left (see
        ``labpkg.loop.resume.position_now``: before any fit, epoch 0; after a Ctrl-C, the rest of
        the epoch it stopped in)."""
        saved = resume.training_state(self, resume.position_now(self))
        if distributed.rank() == 0:
            save_checkpoint(saved, path)

    def restore(self, path: str, strict: bool = True) -> ResumePoint:
        """Load model, optimizer, scaler and counters from a checkpoint file, all checked
        first; the next ``fit`` continues from it (``labpkg.loop.restore``).

        Args:
            path: a file written by ``ModelCheckpoint`` or ``save_training_state``.
            strict: False accepts a checkpoint taken under other conditions (accumulation,
                precision, processes; in the next ``fit``, the loader) with a warning; that
                ``fit`` then continues from the next epoch boundary. Never another optimizer.

        Returns:
            The ``ResumePoint`` ``(epoch, batch)``: the first mini-batch not yet run.
        """
        return restore_trainer(self, path, strict)

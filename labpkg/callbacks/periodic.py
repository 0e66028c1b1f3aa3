"""``EvaluateEvery``: evaluate the model every k updates, not only at the end of an epoch."""

from __future__ import annotations

import math
import time
from typing import Any

from torch.utils.data import DataLoader

from labpkg.callbacks.base import Callback
from labpkg.core.checkpoint import rng_state, set_rng_state
from labpkg.core.checks import as_int
from labpkg.core.devices import _synchronize
from labpkg.core.reproducibility import data_generators

__all__ = ["EvaluateEvery"]


class EvaluateEvery(Callback):
    """Evaluate on ``data`` after every ``every`` optimizer updates, and record the results.

    Runs with different batch sizes make different numbers of updates per epoch, so a
    validation at the end of each epoch puts their points at different update counts.
    This callback evaluates at the same update counts in every run (0, k, 2k, ...), so
    their curves can be compared point by point.

    Evaluating leaves the training it watches as it would have been without it:

    - ``trainer.evaluate`` puts the model in eval mode (BatchNorm uses its running
      statistics); afterwards every module gets back the mode it had, so training goes on
      in train mode;
    - iterating a DataLoader draws a seed from torch's random generator, so the generators
      are saved before and restored after: the training draws the same numbers (data
      order, augmentation) as without the evaluations;
    - the time evaluations take is left out of ``seconds``.

    Args:
        data: the DataLoader to evaluate on, e.g. the validation loader.
        every: evaluate after every this many updates (``trainer.state.global_step``, so
            with gradient accumulation it counts updates, not mini-batches).
        at_start: also evaluate before the first update, at update 0 (default True).
        max_batches: evaluate on at most this many batches of ``data`` (default: all).

    Attributes:
        updates (list[int]): the update count at each evaluation.
        samples (list[int]): training samples seen at each evaluation.
        seconds (list[float]): training seconds at each evaluation (evaluations excluded).
        history (dict[str, list[float]]): ``{key: [value at each evaluation]}``, keys as
            ``Trainer.evaluate`` returns them (``loss`` and each metric's name).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from labpkg.loop.trainer import Trainer
        >>> model = torch.nn.Conv2d(3, 2, kernel_size=1)
        >>> pairs = TensorDataset(torch.rand(8, 3, 4, 4), torch.randint(0, 2, (8, 4, 4)))
        >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
        >>> every_3 = EvaluateEvery(DataLoader(pairs, batch_size=4), every=3)
        >>> _ = trainer.fit(DataLoader(pairs, batch_size=2), 3, callbacks=[every_3], verbose=0)
        >>> every_3.updates, len(every_3.history["loss"])  # 4 updates per epoch, 12 in all
        ([0, 3, 6, 9, 12], 5)
    """

    log_keys: tuple[str, ...] = ()  # the keys it adds to the logs

    def __init__(
        self, data: DataLoader, every: int, at_start: bool = True, max_batches: int | None = None
    ) -> None:
        super().__init__()
        every = as_int(every, "every (a number of updates)", 1)
        self.data, self.every, self.at_start, self.max_batches = data, every, at_start, max_batches
        self._reset()

    def _reset(self) -> None:
        self.updates: list[int] = []
        self.samples: list[int] = []
        self.seconds: list[float] = []
        self.history: dict[str, list[float]] = {}
        self._trained = 0.0  # training seconds up to the last evaluation
        self._since: float | None = None  # when training last resumed (None: not started)
        self._due = False  # an update of a multiple of `every` just ended

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()
        if self.at_start and self.trainer.state.global_step == 0:
            self._evaluate()
        self._since = time.perf_counter()

    def on_update_end(self, step: int, logs: dict | None = None) -> None:
        self._due = step % self.every == 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # at the end of the mini-batch that made the update: after its metrics and hooks
        if self._due:
            self._due = False
            self._evaluate()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._due:  # the update that closed a stream cut short came after its last batch
            self._due = False
            self._evaluate()

    def _evaluate(self) -> None:
        trainer = self.trainer
        if self._since is not None:
            _synchronize(trainer.device)  # the clock must include the queued GPU work
            self._trained += time.perf_counter() - self._since
        modes = {module: module.training for module in trainer.model.modules()}
        generators = rng_state()
        # the loader's, its sampler's and its transforms' own generators too: a transform
        # shared with the training data must not drift because of an evaluation
        owned = [(g, g.get_state()) for g in data_generators(self.data).values()]
        try:
            results = trainer.evaluate(self.data, max_batches=self.max_batches)
        finally:
            set_rng_state(generators)
            for generator, state in owned:
                generator.set_state(state)
            for module, training in modes.items():
                module.train(training)
        self._record(results)
        self._since = time.perf_counter()

    def _record(self, results: dict[str, float]) -> None:
        state = self.trainer.state
        self.updates.append(state.global_step)
        self.samples.append(state.samples_seen)
        self.seconds.append(self._trained)
        for key in results.keys() - self.history.keys():  # a key first seen now: pad the past
            self.history[key] = [math.nan] * (len(self.updates) - 1)
        for key, values in self.history.items():
            values.append(float(results.get(key, math.nan)))

    def state_dict(self) -> dict[str, Any]:
        return {
            "updates": list(self.updates),
            "samples": list(self.samples),
            "seconds": list(self.seconds),
            "history": {key: list(values) for key, values in self.history.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates, self.samples = list(state["updates"]), list(state["samples"])
        self.seconds = list(state["seconds"])
        self.history = {key: list(values) for key, values in state["history"].items()}
        self._trained = self.seconds[-1] if self.seconds else 0.0
        self._since = time.perf_counter()

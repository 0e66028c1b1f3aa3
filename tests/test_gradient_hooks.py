"""The gradient hooks (``on_after_backward``, ``on_before_optimizer_step``) and ``GradientNorm``.

Semantics under test (``labpkg.loop.update``): both hooks fire once per optimizer update, after
the group's last backward; they see the whole group's gradient, unscaled under float16's
GradScaler; ``on_after_backward`` before clipping, ``on_before_optimizer_step`` after it.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers import loader, tiny_data, tiny_model, tiny_trainer
from torch import nn

import labpkg
from labpkg.callbacks.gradients import global_grad_norm


class GradSpy(labpkg.Callback):
    """Keeps a copy of the gradients each gradient hook sees, and the scaler's scale."""

    def __init__(self) -> None:
        super().__init__()
        self.after: list[dict[str, torch.Tensor]] = []
        self.before: list[dict[str, torch.Tensor]] = []
        self.scales: list[float] = []

    def _grads(self) -> dict[str, torch.Tensor]:
        named = self.trainer.model.named_parameters()
        return {k: p.grad.detach().clone() for k, p in named if p.grad is not None}

    def on_after_backward(self, batch, logs=None):
        self.after.append(self._grads())
        self.scales.append(self.trainer.scaler.get_scale())

    def on_before_optimizer_step(self, batch, logs=None):
        self.before.append(self._grads())


def _norm(grads: dict[str, torch.Tensor]) -> float:
    return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads.values()])).item()


def test_global_norm_is_the_norm_clip_grad_norm_returns():
    model = tiny_model()
    x, y = tiny_data(4).tensors
    nn.functional.cross_entropy(model(x), y).backward()
    ours = global_grad_norm(model.parameters())
    theirs = nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf)
    assert torch.allclose(ours, theirs, rtol=1e-6)


def test_hooks_fire_once_per_update_with_the_whole_group_gradient():
    # 12 samples, batches of 2, accumulation 3: each update's gradient is the mean over the
    # group's 6 samples, the gradient one mini-batch of 6 gives (no BatchNorm: batches mix)
    data = tiny_data(12)
    accumulated, spy = tiny_trainer(accumulate_grad_batches=3), GradSpy()
    whole, whole_spy = tiny_trainer(), GradSpy()
    whole.model.load_state_dict(accumulated.model.state_dict())
    accumulated.fit(loader(data, batch_size=2), epochs=1, callbacks=[spy], verbose=0)
    whole.fit(loader(data, batch_size=6), epochs=1, callbacks=[whole_spy], verbose=0)
    assert len(spy.after) == len(spy.before) == accumulated.state.global_step == 2
    for ours, reference in zip(spy.after, whole_spy.after, strict=True):
        for k, g in reference.items():
            assert torch.allclose(ours[k], g, atol=1e-6, rtol=1e-4), k


def test_after_backward_sees_the_gradient_before_clipping_and_the_step_after():
    spy, norms = GradSpy(), labpkg.GradientNorm()
    trainer = tiny_trainer(grad_clip_norm=1e-3)  # far below the real norm: always clips
    trainer.fit(loader(tiny_data(8)), epochs=1, callbacks=[spy, norms], verbose=0)
    for after, before, recorded in zip(spy.after, spy.before, norms.norms, strict=True):
        assert _norm(after) == pytest.approx(recorded, rel=1e-5)  # GradientNorm: unclipped
        assert _norm(after) > 1e-2
        assert _norm(before) == pytest.approx(1e-3, rel=1e-3)  # clipped to grad_clip_norm


def test_gradients_are_unscaled_under_a_float16_grad_scaler():
    # float16 autocast on the CPU with a GradScaler (scale 2**16): the hooks must see
    # gradients of the same size as a float32 run, not 65536 times larger
    model = tiny_model()
    fp32, spy32 = tiny_trainer(copy.deepcopy(model)), GradSpy()
    fp16 = tiny_trainer(model, amp=True, amp_dtype=torch.float16)
    spy16 = GradSpy()
    assert fp16.scaler.is_enabled()
    fp32.fit(loader(tiny_data(8)), epochs=1, callbacks=[spy32], verbose=0)
    fp16.fit(loader(tiny_data(8)), epochs=1, callbacks=[spy16], verbose=0)
    assert spy16.scales[0] == 2.0**16
    first16, first32 = _norm(spy16.after[0]), _norm(spy32.after[0])
    assert first16 == pytest.approx(first32, rel=0.05)  # float16 rounding, not the scale


def test_gradient_norm_records_one_norm_per_update_and_logs_the_epoch_mean():
    norms = labpkg.GradientNorm()
    trainer = tiny_trainer(accumulate_grad_batches=2)
    history = trainer.fit(loader(tiny_data(20)), epochs=2, callbacks=[norms], verbose=0)
    # 5 mini-batches per epoch, accumulation 2: updates after mini-batches 2, 4 and 5
    assert norms.steps == [1, 2, 3, 4, 5, 6] and len(norms.norms) == 6
    assert all(math.isfinite(n) and n > 0 for n in norms.norms)
    means = [sum(norms.norms[:3]) / 3, sum(norms.norms[3:]) / 3]
    assert history.history["grad_norm"] == pytest.approx(means)


def test_the_learning_rate_finder_calls_no_gradient_hook():
    spy = GradSpy()
    trainer = tiny_trainer()
    trainer.fit(loader(tiny_data(4)), epochs=1, callbacks=[spy], verbose=0)
    seen = len(spy.after)
    labpkg.lr_find(trainer, loader(tiny_data(8)), num_updates=3)
    assert len(spy.after) == seen

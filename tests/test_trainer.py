"""Trainer semantics: hook order, exact counters, accumulation, AMP, interrupts, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import Recorder, loader, tiny_data, tiny_model, tiny_trainer
from torch import nn

import labpkg


def test_seed_example_10_batches_per_epoch_five_epochs_gives_50_updates():
    # the source text's 1000 samples / batch 100 / 5 epochs, with 10 samples in a batch: the
    # counters depend on the number of mini-batches, not on how many samples each holds
    assert labpkg.total_updates(1000, 100, 5) == 50
    trainer = tiny_trainer()
    history = trainer.fit(loader(tiny_data(100, size=4), 10, shuffle=True), 5, verbose=0)
    assert trainer.state.batches_per_epoch == 10
    assert trainer.state.global_step == 50 == labpkg.total_updates(100, 10, 5)
    assert trainer.state.samples_seen == 500 and trainer.state.batches_seen == 50
    assert history.epoch == [0, 1, 2, 3, 4]


def test_last_smaller_batch_counts_and_drop_last_removes_it():
    trainer = tiny_trainer()
    trainer.fit(loader(tiny_data(10), batch_size=4), epochs=1, verbose=0)
    assert (trainer.state.global_step, trainer.state.samples_seen) == (3, 10)
    trainer = tiny_trainer()
    trainer.fit(loader(tiny_data(10), batch_size=4, drop_last=True), epochs=1, verbose=0)
    assert (trainer.state.global_step, trainer.state.samples_seen) == (2, 8)


def test_accumulating_two_batches_equals_one_batch_of_twice_the_size():
    data = tiny_data(16)
    a = tiny_trainer(tiny_model(seed=1), accumulate_grad_batches=2)
    a.fit(loader(data, batch_size=4), epochs=1, verbose=0)
    b = tiny_trainer(tiny_model(seed=1))
    b.fit(loader(data, batch_size=8), epochs=1, verbose=0)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_remainder_group_is_averaged_over_its_own_size():
    # 3 mini-batches with k=2: updates on {0,1} and {2}; the last must equal a plain step on 2
    data = tiny_data(12)
    a = tiny_trainer(tiny_model(seed=2), accumulate_grad_batches=2)
    a.fit(loader(data, batch_size=4), epochs=1, verbose=0)
    b = tiny_trainer(tiny_model(seed=2))
    sizes = torch.utils.data.BatchSampler(range(12), batch_size=8, drop_last=False)
    b.fit(torch.utils.data.DataLoader(data, batch_sampler=sizes), epochs=1, verbose=0)
    assert a.state.global_step == b.state.global_step == 2
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_batches_per_epoch_limits_every_epoch():
    trainer = tiny_trainer()
    trainer.fit(loader(tiny_data(40)), epochs=3, batches_per_epoch=2, verbose=0)
    assert (trainer.state.batches_per_epoch, trainer.state.global_step) == (2, 6)


def test_stop_mid_epoch_still_validates_and_ends():
    class StopAtSecondBatch(labpkg.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.trainer.state.stop_training = True

    trainer = tiny_trainer()
    history = trainer.fit(
        loader(tiny_data(20)),
        epochs=3,
        validation_data=loader(tiny_data(4)),
        callbacks=[StopAtSecondBatch()],
        verbose=0,
    )
    assert trainer.state.global_step == 2
    assert history.epoch == [0] and "val_loss" in history.history


def test_epoch_loss_is_the_batch_size_weighted_mean():
    class Constant(nn.Module):
        def forward(self, logits, target):  # loss = mean of the batch's target ids
            return target.float().mean() + 0 * logits.sum()

    x = torch.rand(5, 3, 8, 8)
    y = torch.tensor([0, 0, 0, 0, 2]).view(5, 1, 1).expand(5, 8, 8).contiguous()
    model = tiny_model()
    trainer = labpkg.Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.0), Constant(), device="cpu"
    )
    history = trainer.fit(loader(torch.utils.data.TensorDataset(x, y), batch_size=4), verbose=0)
    assert history.history["loss"][0] == pytest.approx(2 / 5)  # not the per-batch mean (1.0)


class FixedScores(nn.Module):
    """A 'model' whose scores are stored per sample: its predictions are known in advance."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores
        self.bias = nn.Parameter(torch.zeros(()))  # something for the optimizer to hold

    def forward(self, x):
        index = x[:, 0, 0, 0].long()  # the sample's index rides in its first pixel
        return self.scores[index] + self.bias


def test_epoch_metrics_are_dataset_level_not_a_mean_of_batches():
    # two batches of two 1x2 images, 2 classes; batch A has no foreground, batch B some
    target = torch.tensor([[[0, 0]], [[0, 0]], [[1, 1]], [[1, 0]]])
    pred = torch.tensor([[[0, 1]], [[0, 0]], [[1, 1]], [[1, 1]]])
    scores = torch.nn.functional.one_hot(pred, 2).permute(0, 3, 1, 2).float() * 10
    x = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 1, 2).contiguous()
    model = FixedScores(scores)
    trainer = labpkg.Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.0), "cross_entropy",
        metrics=[labpkg.SegmentationMetrics(2)], device="cpu",
    )  # fmt: skip
    data = loader(torch.utils.data.TensorDataset(x, target), batch_size=2)
    logs = trainer.fit(data, validation_data=data, verbose=0).history
    whole = labpkg.MeanIoU(2)
    whole.update(pred, target)  # every pixel at once
    per_batch = []
    for part in (slice(0, 2), slice(2, 4)):
        one = labpkg.MeanIoU(2)
        one.update(pred[part], target[part])
        per_batch.append(one.compute().item())
    expected = whole.compute().item()
    assert abs(expected - sum(per_batch) / 2) > 0.1  # the two means really differ here
    assert logs["mean_iou"][0] == pytest.approx(expected)
    assert logs["val_mean_iou"][0] == pytest.approx(expected)
    # validation has its own copies: its matrix holds the validation pixels only
    assert int(trainer.val_metrics[0].confmat.sum()) == int(trainer.metrics[0].confmat.sum()) == 8


def test_amp_on_cpu_runs_the_forward_pass_in_bfloat16_and_trains():
    seen = []
    trainer = tiny_trainer(amp=True, channels_last=True, lr=0.5)
    trainer.model.head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    history = trainer.fit(loader(tiny_data(32), batch_size=8), epochs=4, verbose=0)
    assert trainer.amp_dtype is torch.bfloat16 and not trainer.scaler.is_enabled()
    assert set(seen) == {torch.bfloat16}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_channels_last_reaches_the_model_in_training_evaluation_and_prediction():
    # inputs already on the device still change layout: the model gets NHWC, not a copy of
    # the loader's NCHW (which would convert at every convolution)
    layouts = []
    trainer = tiny_trainer(channels_last=True)
    trainer.model.register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    data = loader(tiny_data(8), batch_size=4)
    trainer.fit(data, epochs=1, verbose=0)
    trainer.evaluate(data)
    trainer.predict(data)
    assert len(layouts) == 6 and all(layouts)


def test_the_running_loss_of_a_float16_loss_is_summed_in_float32():
    # 4000 × 32 = 128,000 is past float16's largest value (65,504): summed in float16, inf
    running = labpkg.loop.evaluation.RunningLoss.zero(torch.device("cpu"))
    loss = torch.tensor(4000.0, dtype=torch.float16, requires_grad=True)
    running.add(loss * 1, batch_size=32)
    running.add(loss * 1, batch_size=32)
    assert running.sum.dtype == torch.float32 and not running.sum.requires_grad
    assert running.sum.item() == 256_000.0 and running.mean().item() == 4000.0


def test_float16_with_a_grad_scaler_trains_like_float32():
    # chapter 15's AMP run is float16 + GradScaler on a T4; on the CPU, float16 autocast stands
    # in for that path (too slow for the chapter at its size). The final losses differed by
    # 0.005 %, 0.005 %, 0.023 % for seeds 0, 1, 2; the scaler skipped no update
    train = labpkg.SyntheticShapes(64, labpkg.ShapesConfig(size=16), seed=1)
    data, _ = labpkg.make_loaders(train, batch_size=16, device="cpu")

    def new_trainer(**amp):
        torch.manual_seed(0)
        model = labpkg.UNet(labpkg.UNetConfig(base_width=4, depth=2))
        optimizer = labpkg.get_optimizer("adam", model.parameters(), lr=3e-3)
        return labpkg.Trainer(model, optimizer, "dice_ce", device="cpu", **amp)

    loss32 = new_trainer().fit(data, epochs=3, verbose=0).history["loss"]
    fp16 = new_trainer(amp=True, amp_dtype=torch.float16)
    seen = []
    fp16.model.head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    loss16 = fp16.fit(data, epochs=3, verbose=0).history["loss"]
    assert set(seen) == {torch.float16} and fp16.scaler.is_enabled()
    assert loss16[-1] < loss16[0]
    assert loss16[-1] == pytest.approx(loss32[-1], rel=0.02)
    assert all(p.dtype == torch.float32 for p in fp16.model.parameters())


def test_d3_float16_overflow_skips_the_step_and_halves_the_scale():
    def infinite_loss(logits, target):
        return logits.float().sum() * math.inf

    model = tiny_model()
    trainer = labpkg.Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        infinite_loss,
        device="cpu",
        amp=True,
        amp_dtype=torch.float16,
    )
    before = [p.detach().clone() for p in model.parameters()]
    scale = trainer.scaler.get_scale()
    trainer.fit(loader(tiny_data(4)), epochs=1, verbose=0)
    assert trainer.scaler.get_scale() == scale / 2
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
    # the skipped update still counts: global_step follows the data; skipped_updates says so
    assert (trainer.state.global_step, trainer.state.skipped_updates) == (1, 1)


def test_applied_updates_are_not_counted_as_skipped():
    trainer = tiny_trainer(amp=True, amp_dtype=torch.float16)
    trainer.fit(loader(tiny_data(12)), epochs=2, verbose=0)
    assert (trainer.state.global_step, trainer.state.skipped_updates) == (6, 0)


def test_grad_clipping_bounds_the_update():
    trainer = tiny_trainer(grad_clip_norm=1e-3, lr=1.0)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.fit(loader(tiny_data(4)), epochs=1, verbose=0)
    moved = torch.cat(
        [(p - q).flatten() for p, q in zip(trainer.model.parameters(), before, strict=True)]
    )
    assert moved.norm() <= 1e-3 * 1.0001


def test_keyboard_interrupt_returns_the_history_and_runs_train_end():
    class Interrupt(labpkg.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.trainer.state.epoch == 1:
                raise KeyboardInterrupt

    rec = Recorder()
    trainer = tiny_trainer()
    with pytest.warns(UserWarning, match="interrupted"):
        history = trainer.fit(
            loader(tiny_data(8)), epochs=3, callbacks=[Interrupt(), rec], verbose=0
        )
    assert history.epoch == [0] and trainer.state.interrupted
    assert rec.hooks()[-1] == "train_end"


def test_evaluate_and_predict():
    trainer = tiny_trainer(metrics=[labpkg.MeanIoU(3)])
    logs = trainer.evaluate(loader(tiny_data(8)))
    assert set(logs) == {"loss", "mean_iou"}
    scores = trainer.predict(loader(tiny_data(6)))
    assert scores.shape == (6, 3, 8, 8) and scores.device.type == "cpu"
    assert trainer.predict([torch.rand(2, 3, 8, 8)]).shape == (2, 3, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": -1}, "epochs"),
        ({"batches_per_epoch": 99}, "batches_per_epoch"),
        ({"validation_freq": 0}, "validation_freq"),
        ({"validation_freq": []}, "validation_freq"),
        ({"validation_freq": [0, 2]}, "validation_freq"),
        ({"verbose": 3}, "verbose"),
        ({"initial_epoch": 5, "epochs": 2}, "initial_epoch"),
    ],
)
def test_bad_fit_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_trainer().fit(loader(tiny_data(8)), **kwargs)


def test_empty_training_data_is_a_clear_error():
    with pytest.raises(ValueError, match="no batches"):
        tiny_trainer().fit(loader(tiny_data(3), batch_size=4, drop_last=True))


def test_bad_trainer_arguments_name_the_argument():
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="accumulate_grad_batches"):
        labpkg.Trainer(model, opt, nn.CrossEntropyLoss(), accumulate_grad_batches=0)
    with pytest.raises(ValueError, match="grad_clip_norm"):
        labpkg.Trainer(model, opt, nn.CrossEntropyLoss(), grad_clip_norm=0)
    with pytest.raises(TypeError, match="optimizer"):
        labpkg.Trainer(model, "adam", nn.CrossEntropyLoss())


def test_non_finite_inputs_are_reported_when_asked():
    data = tiny_data(4)
    data.tensors[0][0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        tiny_trainer(check_finite_inputs=True).fit(loader(data), verbose=0)


def test_unet_rejects_sizes_it_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 8"):
        labpkg.UNet()(torch.zeros(1, 3, 60, 60))
    with pytest.raises(ValueError, match="num_classes"):
        labpkg.UNetConfig(num_classes=1)


def test_default_unet_is_about_half_a_million_parameters():
    assert 400_000 < labpkg.count_parameters(labpkg.UNet()) < 600_000


def test_get_optimizer_uses_torch_defaults_and_keras_aliases():
    params = [torch.zeros(1, requires_grad=True)]
    assert labpkg.get_optimizer("SGD", params, lr=0.1).defaults["lr"] == 0.1
    adam = labpkg.get_optimizer("adam", params, learning_rate=0.01, epsilon=1e-7)
    assert (adam.defaults["lr"], adam.defaults["eps"]) == (0.01, 1e-7)
    assert labpkg.get_optimizer("rmsprop", params).defaults["alpha"] == 0.99
    with pytest.raises(ValueError, match="adam.*rmsprop.*sgd"):
        labpkg.get_optimizer("adagrad", params)
    with pytest.raises(ValueError, match="either"):
        labpkg.get_optimizer("sgd", params, lr=0.1, learning_rate=0.2)


def test_device_none_is_the_device_pick_device_chooses(monkeypatch, capsys):
    chosen = []

    def pick(device=None):
        chosen.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(labpkg.loop.evaluation, "pick_device", pick)
    model = tiny_model()
    trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), "cross_entropy")
    assert chosen == [None] and trainer.device == torch.device("cpu")
    trainer.fit(loader(tiny_data(8)), epochs=1, verbose=2)
    assert "epoch 1/1 loss=" in capsys.readouterr().out


def test_loss_can_be_named_and_unknown_names_list_the_choices():
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = labpkg.Trainer(model, opt, "dice_ce", device="cpu")
    trainer.fit(loader(tiny_data(8)), verbose=0)
    with pytest.raises(ValueError, match="cross_entropy"):
        labpkg.Trainer(model, opt, "focal")


def test_step_scheduler_steps_once_per_update_and_logs_the_learning_rate():
    from labpkg.callbacks import LRSchedulerCallback

    trainer = tiny_trainer(accumulate_grad_batches=2, lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda step: 0.5**step)
    history = trainer.fit(
        loader(tiny_data(16)),
        epochs=2,
        verbose=0,
        callbacks=[LRSchedulerCallback(sched, interval="step")],
    )
    assert trainer.state.global_step == 4  # 4 batches / epoch, 2 per update
    assert trainer.optimizer.param_groups[0]["lr"] == 0.5**4
    assert history.history["learning_rate"] == [1.0, 0.25]


def _calls(function) -> list[str]:
    """The calls in ``function``'s source, as written (``"model(inputs)"``, ...), in order."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    return [ast.unparse(call) for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset))]


def test_train_step_holds_the_loops_calls_literally_in_the_chapters_order():
    # the training-loop chapter shows train_step and optimizer_step: the five calls of the
    # hand-written loop are there as written, not behind helpers
    step, update = _calls(labpkg.Trainer.train_step), _calls(labpkg.Trainer.optimizer_step)
    forward, loss = step.index("model(inputs)"), step.index("self.loss_fn(logits, target)")
    backward = next(i for i, c in enumerate(step) if c.endswith(".backward()"))
    assert forward < loss < backward < step.index("self.optimizer_step(batch)")
    assert "optimizer.step()" in update
    assert "optimizer.zero_grad(set_to_none=True)" in update
    assert update.index("optimizer.step()") < update.index("optimizer.zero_grad(set_to_none=True)")


def test_train_step_and_the_epoch_loop_number_chapter_fives_steps_in_order():
    import inspect

    source = inspect.getsource(labpkg.Trainer.train_step)
    marks = ["# 1. forward", "# 2. loss", "# 3. backward", "# 4. optimizer step"]
    positions = [source.find(mark) for mark in marks]
    assert -1 not in positions and positions == sorted(positions), positions
    assert "# 5. metrics" in inspect.getsource(labpkg.Trainer._train_epoch)


# ---------------------------------------------------------------- what fit leaves behind
def _step_hooks(optimizer) -> int:
    return len(optimizer._optimizer_step_post_hooks)  # torch keeps them in this dict


def test_fit_and_lr_find_leave_no_hook_on_the_users_optimizer():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = labpkg.Trainer(model, optimizer, "cross_entropy", device="cpu")
    second = labpkg.Trainer(model, optimizer, "cross_entropy", device="cpu")  # shares it
    first.fit(loader(tiny_data(8)), epochs=1, verbose=0)
    labpkg.lr_find(second, loader(tiny_data(8)), num_updates=3)
    assert _step_hooks(optimizer) == 0


def test_data_parallel_wraps_the_model_once_per_fit(monkeypatch):
    wrapped = []

    def wrap(model, device):
        wrapped.append(model)
        return model

    monkeypatch.setattr(labpkg.core.distributed, "wrap_model", wrap)
    trainer = tiny_trainer()
    trainer.fit(loader(tiny_data(8)), epochs=3, verbose=0)
    assert len(wrapped) == 1
    assert trainer.train_model is trainer.model  # unwrapped again after fit


def test_train_state_saves_and_loads_its_counters():
    state = labpkg.TrainState(global_step=7, skipped_updates=1, batches_seen=14, epoch=3)
    state.stop_training = True
    fresh = labpkg.TrainState()
    fresh.load_state_dict(state.state_dict())
    assert (fresh.global_step, fresh.skipped_updates, fresh.batches_seen) == (7, 1, 14)
    assert fresh.stop_training and fresh.epoch == 0  # the position is the checkpoint's
    with pytest.raises(ValueError, match="lacks the counters"):
        fresh.load_state_dict({"global_step": 1})

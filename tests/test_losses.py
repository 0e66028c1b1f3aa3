"""Losses: spec cases L1-L6, gradients, properties, errors, float32 under autocast."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labpkg.nn.losses import (
    CombinedLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    JaccardLoss,
    cross_entropy,
    get_loss,
    overlap_loss,
)

LN3 = math.log(3)


def l1_logits():
    # pixel a: logits [0, 0], target 0; pixel b: logits [0, ln 3], target 1 -> (1, 2, 1, 2)
    return torch.tensor([[0.0, 0.0], [0.0, LN3]]).T.reshape(1, 2, 1, 2)


L1_TARGET = torch.tensor([[[0, 1]]])


def test_l1_cross_entropy_variants():
    logits = l1_logits()
    none = CrossEntropyLoss(reduction="none")(logits, L1_TARGET)
    torch.testing.assert_close(none, torch.tensor([[[math.log(2), -math.log(0.75)]]]))
    assert CrossEntropyLoss()(logits, L1_TARGET).item() == pytest.approx(0.4904, abs=1e-4)
    weighted = CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))(logits, L1_TARGET)
    assert weighted.item() == pytest.approx(0.3890, abs=1e-4)
    ignored = CrossEntropyLoss(ignore_index=1)(logits, L1_TARGET)
    assert ignored.item() == pytest.approx(0.6931, abs=1e-4)
    smooth_b = CrossEntropyLoss(label_smoothing=0.2)(logits[..., 1:], L1_TARGET[..., 1:])
    assert smooth_b.item() == pytest.approx(0.3975, abs=1e-4)


def test_l2_all_ignored_gives_a_connected_zero_and_warns():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    with pytest.warns(UserWarning, match="ignore_index"):
        loss = CrossEntropyLoss(ignore_index=255)(logits, torch.full((1, 2, 2), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


BIN_P = torch.tensor([[[1.0, 0.0], [0.5, 0.0]]])
BIN_T = torch.tensor([[[1, 0], [1, 0]]])


def test_l3_binary_dice_and_jaccard():
    dice = DiceLoss(mode="binary", from_logits=False, smooth=0)(BIN_P, BIN_T)
    assert dice.item() == pytest.approx(0.142857, abs=1e-6)
    dice1 = DiceLoss(mode="binary", from_logits=False, smooth=1)(BIN_P, BIN_T)
    assert dice1.item() == pytest.approx(0.1111, abs=1e-4)  # smp's doubled smooth gives .0909
    jac = JaccardLoss(mode="binary", from_logits=False, smooth=0)(BIN_P, BIN_T)
    assert jac.item() == pytest.approx(0.25)


def test_l4_per_image_versus_whole_batch():
    p = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]).view(2, 1, 2, 2)
    t_ = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]]).view(2, 1, 2, 2)
    args = {"mode": "binary", "from_logits": False, "smooth": 0}
    assert DiceLoss(per_image=True, **args)(p, t_).item() == pytest.approx(0.5)
    assert DiceLoss(**args)(p, t_).item() == pytest.approx(0.6667, abs=1e-4)


def test_l5_empty_target():
    empty = torch.zeros(1, 1, 2, 2, dtype=torch.long)
    args = {"mode": "binary", "from_logits": False}
    assert DiceLoss(smooth=0, **args)(torch.zeros(1, 1, 2, 2), empty).item() == 0.0
    one_fp = torch.zeros(1, 1, 2, 2)
    one_fp[0, 0, 0, 0] = 1.0
    assert DiceLoss(smooth=0, **args)(one_fp, empty).item() == pytest.approx(1.0)
    assert DiceLoss(smooth=1, **args)(one_fp, empty).item() == pytest.approx(0.5)


def l6():
    probs = torch.tensor([[0.75, 0.25], [0.25, 0.75]]).T.reshape(1, 2, 1, 2)  # pixels a, b
    return probs, torch.zeros(1, 1, 2, dtype=torch.long)


def test_l6_multiclass_absent_class_stays_in_the_average():
    probs, target = l6()
    args = {"from_logits": False}
    assert DiceLoss(smooth=0, **args)(probs, target).item() == pytest.approx(0.6667, abs=1e-4)
    assert DiceLoss(smooth=1, **args)(probs, target).item() == pytest.approx(0.375)
    no_bg = DiceLoss(smooth=1, include_background=False, **args)(probs, target)
    assert no_bg.item() == pytest.approx(0.5)
    assert JaccardLoss(smooth=0, **args)(probs, target).item() == pytest.approx(0.75)
    logits = probs.log()  # softmax(log p) = p
    assert CrossEntropyLoss()(logits, target).item() == pytest.approx(0.8370, abs=1e-4)
    assert DiceCELoss(smooth=1)(logits, target).item() == pytest.approx(1.2120, abs=1e-4)


def test_ignore_index_is_masked_after_the_activation():
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[:, :2] = 255
    full = DiceLoss(ignore_index=255)(logits, target)
    # the same loss on the valid pixels only: the ignored pixels contribute nothing
    cropped = DiceLoss()(logits[:, :, 2:], target[:, 2:])
    assert full.item() == pytest.approx(cropped.item(), abs=1e-6)


def test_class_weights_weight_the_class_average():
    probs, target = l6()
    w = DiceLoss(smooth=1, from_logits=False, class_weights=[1.0, 0.0])(probs, target)
    assert w.item() == pytest.approx(0.25)


def test_log_loss_is_minus_log_of_the_score():
    value = DiceLoss(mode="binary", from_logits=False, smooth=0, log_loss=True)(BIN_P, BIN_T)
    assert value.item() == pytest.approx(-math.log(6 / 7), abs=1e-6)


def test_multilabel_mode_uses_one_sigmoid_per_channel():
    logits = torch.full((1, 2, 1, 1), 20.0)
    target = torch.ones(1, 2, 1, 1, dtype=torch.long)
    assert DiceLoss(mode="multilabel", smooth=0)(logits, target).item() == pytest.approx(
        0, abs=1e-6
    )


@pytest.mark.parametrize(
    "loss", [DiceLoss(smooth=0.5), JaccardLoss(smooth=0.5), CrossEntropyLoss(), DiceCELoss()]
)
def test_gradcheck_in_float64(loss):
    logits = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 3))

    def f(x):
        return loss(x, target).double()

    # the losses compute in float32 by design; check the float32 math against float64
    # finite differences with matching tolerances
    assert torch.autograd.gradcheck(f, (logits,), eps=1e-3, atol=1e-3, rtol=1e-2)


def test_loss_is_float32_under_bfloat16_autocast():
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert DiceCELoss()(logits.bfloat16(), target).dtype == torch.float32


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["dice", "jaccard"]))
def test_perfect_prediction_gives_zero_and_losses_lie_in_0_1(seed, name):
    gen = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 3, (2, 4, 4), generator=gen)
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    loss = get_loss(name, from_logits=False, smooth=0)
    assert loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    random_probs = torch.rand(2, 3, 4, 4, generator=gen).softmax(1)
    assert 0 <= loss(random_probs, target).item() <= 1


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2), TypeError, "int64"),
        (torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long), ValueError, "squeeze"),
        (torch.zeros(1, 3, 2, 2), torch.full((1, 2, 2), 3), ValueError, "outside"),
        (torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 2, dtype=torch.long), ValueError, "spatial"),
        (torch.zeros(1, 3, 2, 2), torch.full((1, 2, 2), 255), ValueError, "ignore_index"),
    ],
)
@pytest.mark.parametrize("loss", [CrossEntropyLoss(), DiceLoss()], ids=["ce", "dice"])
def test_bad_targets_get_a_clear_error(loss, logits, target, error, match):
    with pytest.raises(error, match=match):
        loss(logits, target)


def test_bad_loss_options_are_rejected():
    with pytest.raises(ValueError, match="unknown loss.*dice_ce"):
        get_loss("focal")
    with pytest.raises(ValueError, match="mode"):
        DiceLoss(mode="multi")
    with pytest.raises(ValueError, match=">= 0"):
        CombinedLoss([(DiceLoss(), -1.0)])
    with pytest.raises(ValueError, match="class_weights"):
        DiceLoss(class_weights=[1.0])(
            torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long)
        )


# ------------------------------ class weights that would give a loss of 0 or NaN are refused
BAD_WEIGHTS = {"all 0": [0.0, 0.0, 0.0], "NaN": [1.0, math.nan, 1.0], "inf": [1.0, math.inf, 1.0]}


@pytest.mark.parametrize("weights", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
def test_class_weights_of_0_or_nan_are_refused_when_the_loss_is_built(weights):
    with pytest.raises(ValueError, match=r"weight must be finite and >= 0, not all 0"):
        CrossEntropyLoss(weight=weights)
    with pytest.raises(ValueError, match=r"class_weights .*must be finite and >= 0, not all 0"):
        DiceLoss(class_weights=weights)
    with pytest.raises(ValueError, match="not all 0"):
        DiceCELoss(weight=weights)


def test_class_weights_of_0_or_nan_are_refused_by_the_functional_forms():
    logits, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)
    for weights in BAD_WEIGHTS.values():
        with pytest.raises(ValueError, match="weight must be finite and >= 0, not all 0"):
            cross_entropy(logits, target, weight=torch.tensor(weights))
        with pytest.raises(ValueError, match="class_weights must be finite"):
            overlap_loss(logits, target, class_weights=weights)


def test_weights_only_on_the_left_out_background_are_refused():
    with pytest.raises(ValueError, match=r"class_weights \(the classes in the mean\)"):
        DiceLoss(class_weights=[1.0, 0.0, 0.0], include_background=False)
    logits, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="without class 0"):
        overlap_loss(logits, target, class_weights=[1.0, 0.0, 0.0], include_background=False)


def test_cross_entropy_mean_matches_torch_with_weights_smoothing_and_ignore():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, generator=gen)
    target = torch.randint(0, 3, (2, 4, 4), generator=gen)
    target[0, 0] = 255
    weight = torch.tensor([1.0, 2.0, 0.5])
    ours = CrossEntropyLoss(weight, ignore_index=255, label_smoothing=0.1)(logits, target)
    theirs = torch.nn.functional.cross_entropy(
        logits, target, weight=weight, ignore_index=255, label_smoothing=0.1
    )
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("make", [CrossEntropyLoss, DiceLoss, DiceCELoss])
def test_validate_args_false_skips_the_label_check_but_not_the_shape_checks(make):
    loss = make(validate_args=False)
    logits, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long)
    assert torch.isfinite(loss(logits, target))
    with pytest.raises(ValueError, match="differ in batch or spatial size"):
        loss(logits, torch.zeros(1, 3, 3, dtype=torch.long))
    loss.validate_args = True
    with pytest.raises(ValueError, match=r"labels outside \[0, 3\)"):
        loss(logits, torch.full((1, 2, 2), 5))


def test_binary_dice_with_a_label_of_2_raises_or_turns_nan_never_a_number():
    probs = torch.full((1, 2, 2), 0.5)
    target = torch.tensor([[[0, 1], [2, 1]]])  # 2 is no binary label
    with pytest.raises(ValueError, match="0 and 1 only"):
        DiceLoss(mode="binary", from_logits=False)(probs, target)
    unchecked = DiceLoss(mode="binary", from_logits=False, validate_args=False)(probs, target)
    assert torch.isnan(unchecked)


def test_dice_ce_checks_the_target_once_per_call():
    loss = DiceCELoss()
    assert loss.validate_args and not loss.losses[1].validate_args  # Dice would repeat CE's
    loss.validate_args = False
    assert not loss.losses[0].validate_args and not loss.losses[1].validate_args

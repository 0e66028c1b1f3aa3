"""Losses for segmentation: cross-entropy, Dice and Jaccard (IoU), and weighted sums of them.

Cross-entropy scores every pixel on its own, so a class that covers few pixels barely moves it.
Dice and Jaccard losses score the *overlap* of each class as a whole, so a small class weighs as
much as a large one. Their sum (``DiceCELoss``) adds the second view to the first; chapter 10
measures when that helps (small objects, short runs) instead of calling it a default.

All losses compute in float32, even under autocast (see ``labpkg.nn.functional``). Where labpkg
differs from other libraries, the docstring says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from labpkg.nn.functional import (
    check_class_weights,
    check_loss_options,
    cross_entropy,
    overlap_loss,
)

__all__ = [
    "cross_entropy",
    "overlap_loss",
    "CrossEntropyLoss",
    "DiceLoss",
    "JaccardLoss",
    "DiceCELoss",
    "CombinedLoss",
    "LOSSES",
    "get_loss",
]


class CrossEntropyLoss(nn.Module):
    """``cross_entropy`` as a module (see it for the arguments).

    Example:
        >>> loss = CrossEntropyLoss(ignore_index=255)
        >>> logits, target = torch.zeros(1, 3, 2, 2), torch.tensor([[[0, 1], [2, 255]]])
        >>> round(loss(logits, target).item(), 4)
        1.0986
    """

    def __init__(
        self,
        weight: Sequence[float] | torch.Tensor | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        check_loss_options(reduction=reduction, label_smoothing=label_smoothing)
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32)
            check_class_weights(weight, "weight")  # now, not as a loss of 0 or NaN in training
        self.register_buffer("weight", weight)  # moves with .to(device)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.reduction, self.validate_args = reduction, validate_args

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(
            logits, target, self.weight, self.ignore_index, self.label_smoothing,
            self.reduction, self.validate_args,
        )  # fmt: skip


class DiceLoss(nn.Module):
    """1 − Dice, per class, averaged: dice = (2I + s) / (P + T + s).

    I = Σ p·t, P = Σ p, T = Σ t, summed per class over the batch and the pixels (or per image
    with ``per_image=True``). A class absent from the target *stays in the average*: predicting
    it anyway costs up to 1 (segmentation_models_pytorch zeroes that loss instead, but still
    divides by the number of classes). smp's ``soft_dice_score`` (since smp 0.4.0) is
    (I + s) / ((P + T) / 2 + s) = (2I + 2s) / (P + T + 2s): the same at s = 0, but its
    ``smooth`` counts twice. smp's default ``smooth`` is 0, ours 1.

    Args:
        mode: ``"multiclass"`` (softmax, target (N, H, W)), ``"binary"`` (sigmoid, target
            (N, H, W) of 0/1) or ``"multilabel"`` (sigmoid per channel, target (N, C, H, W)).
        from_logits: apply the activation (default True); False takes probabilities.
        smooth: s, added to numerator and denominator (default 1.0).
        eps: smallest denominator, and floor of the score in ``log_loss`` (default 1e-7).
        ignore_index: target value to skip; masked after the activation.
        include_background: keep channel 0 in the average (default True).
        per_image: sums per image, then average over images and classes (default False).
        log_loss: −log(dice) instead of 1 − dice.
        class_weights: per-class weights for the average.
        validate_args: check label values (a host read; see ``cross_entropy``). Without it a
            binary or multilabel target holding a value other than 0/1 makes the loss NaN.

    Example:
        >>> probs = torch.tensor([[[[0.75]], [[0.25]]], [[[0.25]], [[0.75]]]])  # (2, 2, 1, 1)
        >>> target = torch.zeros(2, 1, 1, dtype=torch.long)
        >>> round(DiceLoss(from_logits=False)(probs, target).item(), 4)
        0.375
    """

    kind = "dice"

    def __init__(
        self,
        mode: str = "multiclass",
        from_logits: bool = True,
        smooth: float = 1.0,
        eps: float = 1e-7,
        ignore_index: int | None = None,
        include_background: bool = True,
        per_image: bool = False,
        log_loss: bool = False,
        class_weights: Sequence[float] | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        check_loss_options(mode=mode, smooth=smooth, eps=eps)
        if class_weights is not None:  # now, not as a loss of 0 or NaN in training
            weights = torch.as_tensor(class_weights, dtype=torch.float32)
            if not include_background and mode != "binary" and weights.ndim == 1:
                weights = weights[1:]  # class 0 is left out of the mean
            check_class_weights(weights, "class_weights (the classes in the mean)")
        self.options = {
            "mode": mode,
            "from_logits": from_logits,
            "smooth": smooth,
            "eps": eps,
            "ignore_index": ignore_index,
            "include_background": include_background,
            "per_image": per_image,
            "log_loss": log_loss,
            "class_weights": class_weights,
        }
        self.validate_args = validate_args

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return overlap_loss(
            logits, target, kind=self.kind, validate_args=self.validate_args, **self.options
        )


class JaccardLoss(DiceLoss):
    """1 − IoU, per class, averaged: jaccard = (I + s) / (P + T − I + s). Arguments as ``DiceLoss``.

    Example:
        >>> probs = torch.tensor([[[[0.75]], [[0.25]]], [[[0.25]], [[0.75]]]])
        >>> target = torch.zeros(2, 1, 1, dtype=torch.long)
        >>> round(JaccardLoss(from_logits=False, smooth=0)(probs, target).item(), 4)
        0.75
    """

    kind = "jaccard"


class CombinedLoss(nn.Module):
    """A weighted sum of losses: ``CombinedLoss([(CrossEntropyLoss(), 1.0), (DiceLoss(), 0.5)])``.

    Example:
        >>> loss = CombinedLoss([(CrossEntropyLoss(), 1.0), (DiceLoss(), 0.0)])
        >>> round(loss(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long)).item(), 4)
        0.6931
    """

    def __init__(self, terms: Sequence[tuple[nn.Module, float]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("CombinedLoss needs at least one (loss, weight) pair")
        for _, weight in terms:
            if weight < 0:
                raise ValueError(f"loss weights must be >= 0, got {weight}")
        self.losses = nn.ModuleList(loss for loss, _ in terms)
        self.weights = [float(w) for _, w in terms]

    @property
    def validate_args(self) -> bool:
        """Whether the terms check their inputs; setting it sets every term that can."""
        return any(getattr(loss, "validate_args", False) for loss in self.losses)

    @validate_args.setter
    def validate_args(self, value: bool) -> None:
        for loss in self.losses:
            if hasattr(loss, "validate_args"):
                loss.validate_args = value

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(
            w * loss(logits, target) for loss, w in zip(self.losses, self.weights, strict=True)
        )


class DiceCELoss(CombinedLoss):
    """``ce_weight`` · cross-entropy + ``dice_weight`` · Dice loss (multiclass).

    Args:
        ce_weight, dice_weight: the weights, >= 0 (default 1.0 each).
        weight: class weights for the cross-entropy; ``label_smoothing`` likewise.
        ignore_index: skipped by both terms.
        validate_args: check the target's labels (once, in the cross-entropy term).
        **dice_options: passed to ``DiceLoss`` (smooth, include_background, ...).

    Example:
        >>> logits, target = torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long)
        >>> round(DiceCELoss()(logits, target).item(), 4)  # ln 2 + (0.2 + 1/3) / 2
        0.9598
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        weight=None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        validate_args: bool = True,
        **dice_options,
    ) -> None:
        ce = CrossEntropyLoss(weight, ignore_index, label_smoothing, validate_args=validate_args)
        # the target is checked once, by the cross-entropy term: the Dice term would only
        # repeat the same host read
        dice = DiceLoss(ignore_index=ignore_index, validate_args=False, **dice_options)
        super().__init__([(ce, ce_weight), (dice, dice_weight)])

    @property
    def validate_args(self) -> bool:
        """Whether the target is checked (by the cross-entropy term only)."""
        return self.losses[0].validate_args

    @validate_args.setter
    def validate_args(self, value: bool) -> None:
        self.losses[0].validate_args = value


LOSSES = {
    "cross_entropy": CrossEntropyLoss,
    "dice": DiceLoss,
    "jaccard": JaccardLoss,
    "dice_ce": DiceCELoss,
}


def get_loss(name: str, **kwargs) -> nn.Module:
    """A loss by name: ``"cross_entropy"``, ``"dice"``, ``"jaccard"`` or ``"dice_ce"``.

    Example:
        >>> type(get_loss("dice_ce")).__name__
        'DiceCELoss'
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name](**kwargs)

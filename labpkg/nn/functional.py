"""Functional forms of the segmentation losses (the ``nn.Module`` wrappers are in ``losses``).

Everything is computed in float32, even under autocast: a float16 sum over many pixels
overflows at 65504.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from labpkg.core.checks import check_class_target, check_labels, check_mode

__all__ = ["cross_entropy", "overlap_loss", "check_class_weights", "check_loss_options"]

REDUCTIONS = ("mean", "sum", "none")


def check_loss_options(
    mode: str = "multiclass",
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    smooth: float = 1.0,
    eps: float = 1e-7,
) -> None:
    """Raise for a loss option out of range; the loss modules call it when built (before
    training), the functions here when called. Each default is a valid value.

    Example:
        >>> check_loss_options(reduction="avg")
        Traceback (most recent call last):
        ...
        ValueError: reduction must be 'mean', 'sum' or 'none', got 'avg'
    """
    check_mode(mode)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if smooth < 0 or eps <= 0:
        raise ValueError(f"need smooth >= 0 and eps > 0, got smooth={smooth}, eps={eps}")


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    validate_args: bool = True,
) -> torch.Tensor:
    """Pixel-wise cross-entropy with checked inputs.

    Args:
        logits: raw class scores (N, C, H, W).
        target: int64 class ids (N, H, W).
        weight: per-class weights (C,); the mean is Σ w_y·l / Σ w_y over valid pixels.
        ignore_index: target value to skip (e.g. 255 for "void" pixels).
        label_smoothing: ε in [0, 1): the target becomes (1 − ε)·onehot + ε / C.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate_args: check that every label is in [0, C) or ``ignore_index``, and warn if
            every pixel is ignored (host reads; the Trainer checks first batches only).

    Returns:
        The loss. If every pixel is ignored, the mean is a 0 still connected to the graph
        (zero gradients); PyTorch would return NaN.

    Example:
        >>> logits = torch.tensor([[0.0, 0.0]]).view(1, 2, 1, 1)
        >>> round(cross_entropy(logits, torch.zeros(1, 1, 1, dtype=torch.long)).item(), 4)
        0.6931
    """
    check_loss_options(reduction=reduction, label_smoothing=label_smoothing)
    _check_multiclass(logits, target, ignore_index, validate_args)
    if weight is not None:
        weight = _class_weights(weight, logits.shape[1], logits, "weight")
        if validate_args:  # a host read: first batches only
            check_class_weights(weight, "weight")
    if validate_args and ignore_index is not None and not bool((target != ignore_index).any()):
        warnings.warn("every target pixel equals ignore_index: the loss is 0", stacklevel=2)
    # torch skips -100 when no ignore_index is given; so must the mean's denominator, or an
    # unchecked mini-batch holding -100 would give a loss too small by the skipped share
    skipped = -100 if ignore_index is None else ignore_index
    per_pixel = F.cross_entropy(  # (N, H, W): w_y · l per pixel, 0 where ignored
        logits.float(),
        target,
        weight=weight,
        ignore_index=skipped,
        label_smoothing=label_smoothing,
        reduction="none",
    )
    if reduction == "none":
        return per_pixel
    if reduction == "sum":
        return per_pixel.sum()
    valid = target != skipped  # (N, H, W): the pixels torch scored
    safe = torch.where(valid, target, 0)
    weights = valid.float() if weight is None else torch.where(valid, weight[safe], 0.0)
    # Σ w_y·l / Σ w_y: no host read, and 0 (not NaN) when every pixel is ignored
    return per_pixel.sum() / weights.sum().clamp_min(torch.finfo(torch.float32).tiny)


def _check_multiclass(logits, target, ignore_index, validate_args: bool = True) -> None:
    """Shapes and dtypes always (free: known on the host); label values if ``validate_args``."""
    check_class_target(target)
    if logits.ndim != target.ndim + 1:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be (N, C, H, W) for a target (N, H, W), "
            f"got target {tuple(target.shape)}"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in batch or "
            "spatial size; resize the masks with mode='nearest' or fix the model's output size"
        )
    if validate_args:
        check_labels(target, logits.shape[1], ignore_index)


def overlap_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    kind: str = "dice",
    mode: str = "multiclass",
    from_logits: bool = True,
    smooth: float = 1.0,
    eps: float = 1e-7,
    ignore_index: int | None = None,
    include_background: bool = True,
    per_image: bool = False,
    log_loss: bool = False,
    class_weights: Sequence[float] | torch.Tensor | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Dice or Jaccard loss (``kind``); see ``DiceLoss`` for the arguments.

    Example:
        >>> p = torch.tensor([[[1.0, 0.0], [0.5, 0.0]]])
        >>> t = torch.tensor([[[1, 0], [1, 0]]])
        >>> round(overlap_loss(p, t, mode="binary", from_logits=False, smooth=0).item(), 6)
        0.142857
    """
    if kind not in ("dice", "jaccard"):
        raise ValueError(f"kind must be 'dice' or 'jaccard', got {kind!r}")
    check_loss_options(mode=mode, smooth=smooth, eps=eps)
    probs, onehot, bad = _probs_and_onehot(
        logits, target, mode, from_logits, ignore_index, validate_args
    )
    dims = (2, 3) if per_image else (0, 2, 3)  # per image: (N, C) sums; else (C,) sums
    inter = (probs * onehot).sum(dims)
    pred_sum, true_sum = probs.sum(dims), onehot.sum(dims)
    if kind == "dice":
        score = (2 * inter + smooth) / (pred_sum + true_sum + smooth).clamp_min(eps)
    else:
        score = (inter + smooth) / (pred_sum + true_sum - inter + smooth).clamp_min(eps)
    # nothing predicted and nothing there: a perfect score, whatever smooth is
    score = torch.where(pred_sum + true_sum == 0, torch.ones_like(score), score)
    loss = -torch.log(score.clamp_min(eps)) if log_loss else 1 - score
    weights = _class_weights(class_weights, loss.shape[-1], loss)
    name = "class_weights"
    if not include_background and mode != "binary":
        loss, weights = loss[..., 1:], weights[1:]
        name = "class_weights without class 0 (include_background=False)"
    if validate_args and class_weights is not None:  # a host read: first batches only
        check_class_weights(weights, name)
    weights = weights.expand_as(loss)
    loss = (loss * weights).sum() / weights.sum()
    # a 0/1 target holding another value: NaN, never a plausible number (no host read)
    return loss if bad is None else torch.where(bad, torch.nan, loss)


def _probs_and_onehot(logits, target, mode, from_logits, ignore_index, validate_args):
    """Probabilities and one-hot targets (N, K, H, W) in float32, ignored pixels zeroed.

    Also returns, for binary and multilabel targets checked without a host read, a boolean
    tensor that is True if some target value is neither 0, 1 nor ``ignore_index``.
    """
    logits = logits.float()
    valid = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        valid = target != ignore_index
    if mode == "multiclass":
        _check_multiclass(logits, target, ignore_index, validate_args)
        probs = logits.softmax(dim=1) if from_logits else logits
        safe = torch.where(valid, target, 0)[:, None]  # ignored labels must not index
        # one-hot by scatter: no host read (F.one_hot reads the largest label back); a label
        # >= C still fails here, as an index error
        onehot = torch.zeros_like(probs).scatter_(1, safe, 1.0)  # (N, C, H, W)
        valid, bad = valid[:, None], None  # (N, 1, H, W)
    else:
        if mode == "binary":
            logits = logits[:, None] if logits.ndim == 3 else logits  # (N, 1, H, W)
            target, valid = _channel(target), _channel(valid)
        if logits.shape != target.shape:
            raise ValueError(
                f"{mode} mode needs logits and target of one shape, got {tuple(logits.shape)} "
                f"and {tuple(target.shape)}"
            )
        if target.is_floating_point():
            raise TypeError(f"{mode} target must hold integer 0/1 labels, got {target.dtype}")
        probs = torch.sigmoid(logits) if from_logits else logits
        bad = (valid & ((target < 0) | (target > 1))).any()
        if validate_args and bool(bad):  # one host read
            raise ValueError(
                f"{mode} target must hold 0 and 1 only (or ignore_index); found other values. "
                "For several classes use mode='multiclass'"
            )
        onehot = torch.where(valid, target, 0).float()
    # masked after the activation: masking logits would still leak probability mass
    mask = valid.float()
    return probs * mask, onehot * mask, None if validate_args else bad


def _channel(x: torch.Tensor) -> torch.Tensor:
    return x[:, None] if x.ndim == 3 else x  # (N, H, W) -> (N, 1, H, W)


def _class_weights(weights, num, like, name="class_weights") -> torch.Tensor:
    if weights is None:
        return torch.ones(num, device=like.device)
    w = torch.as_tensor(weights, dtype=torch.float32, device=like.device)
    if w.shape != (num,):
        raise ValueError(f"{name} must be {num} numbers (one per class), got {w.tolist()}")
    return w


def check_class_weights(weights: torch.Tensor, name: str = "class_weights") -> None:
    """Raise unless the class weights are finite, >= 0 and not all 0 (one host read).

    The mean divides by the weights' sum: all 0 makes the loss 0 (or NaN), and a NaN weight
    makes it NaN, so training would learn nothing without saying why.

    Example:
        >>> check_class_weights(torch.tensor([0.0, 0.0]))
        Traceback (most recent call last):
        ...
        ValueError: class_weights must be finite and >= 0, not all 0 (...); got [0.0, 0.0]
    """
    if weights.ndim != 1:
        raise ValueError(f"{name} must be one number per class, got shape {tuple(weights.shape)}")
    usable = torch.isfinite(weights).all() & (weights >= 0).all() & (weights.sum() > 0)
    if not bool(usable):
        raise ValueError(
            f"{name} must be finite and >= 0, not all 0 (the loss divides by their sum); "
            f"got {weights.tolist()}"
        )

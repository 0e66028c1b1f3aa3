"""Functional forms of the segmentation losses (the ``nn.Module`` wrappers are in ``losses``).

Everything is computed in float32, even under autocast: a float16 sum over many pixels
overflows at 65504.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from labpkg.checks import check_class_target, check_labels

__all__ = ["cross_entropy", "overlap_loss", "LOSS_MODES"]

LOSS_MODES = ("multiclass", "binary", "multilabel")


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Pixel-wise cross-entropy with checked inputs.

    Args:
        logits: raw class scores (N, C, H, W).
        target: int64 class ids (N, H, W).
        weight: per-class weights (C,); the mean is Σ w_y·l / Σ w_y over valid pixels.
        ignore_index: target value to skip (e.g. 255 for "void" pixels).
        label_smoothing: ε in [0, 1): the target becomes (1 − ε)·onehot + ε / C.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        The loss. If every pixel is ignored, a 0 that is still connected to the graph (zero
        gradients) and a warning; PyTorch would return NaN for the mean.

    Example:
        >>> logits = torch.tensor([[0.0, 0.0]]).view(1, 2, 1, 1)
        >>> round(cross_entropy(logits, torch.zeros(1, 1, 1, dtype=torch.long)).item(), 4)
        0.6931
    """
    _check_multiclass(logits, target, ignore_index)
    ignore = -100 if ignore_index is None else ignore_index
    if ignore_index is not None and not bool((target != ignore_index).any()):  # host sync
        warnings.warn("every target pixel equals ignore_index: the loss is 0", stacklevel=2)
        return logits.sum() * 0.0
    return F.cross_entropy(
        logits.float(),
        target,
        weight=None if weight is None else weight.to(logits.device, torch.float32),
        ignore_index=ignore,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )


def _check_multiclass(logits: torch.Tensor, target: torch.Tensor, ignore_index) -> None:
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
    probs, onehot = _probs_and_onehot(logits, target, mode, from_logits, ignore_index)
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
    if not include_background and mode != "binary":
        loss, weights = loss[..., 1:], weights[1:]
    weights = weights.expand_as(loss)
    return (loss * weights).sum() / weights.sum()


def _probs_and_onehot(logits, target, mode, from_logits, ignore_index):
    """Probabilities and one-hot targets (N, K, H, W) in float32, ignored pixels zeroed."""
    if mode not in LOSS_MODES:
        raise ValueError(f"mode must be one of {LOSS_MODES}, got {mode!r}")
    logits = logits.float()
    if mode == "multiclass":
        _check_multiclass(logits, target, ignore_index)
        probs = logits.softmax(dim=1) if from_logits else logits
        valid = torch.ones_like(target, dtype=torch.bool)
        if ignore_index is not None:
            valid = target != ignore_index
        safe = torch.where(valid, target, 0)  # ignored labels must not index the one-hot
        onehot = F.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).float()  # (N, C, H, W)
        valid = valid[:, None]  # (N, 1, H, W)
    else:
        if mode == "binary":
            logits = logits[:, None] if logits.ndim == 3 else logits  # (N, 1, H, W)
            target = target[:, None] if target.ndim == 3 else target
        if logits.shape != target.shape:
            raise ValueError(
                f"{mode} mode needs logits and target of one shape, got {tuple(logits.shape)} "
                f"and {tuple(target.shape)}"
            )
        probs = torch.sigmoid(logits) if from_logits else logits
        valid = torch.ones_like(target, dtype=torch.bool)
        if ignore_index is not None:
            valid = target != ignore_index
        onehot = torch.where(valid, target, 0).float()
    # masked after the activation: masking logits would still leak probability mass
    mask = valid.float()
    return probs * mask, onehot * mask


def _class_weights(weights, num, like: torch.Tensor) -> torch.Tensor:
    if weights is None:
        return torch.ones(num, device=like.device)
    w = torch.as_tensor(weights, dtype=torch.float32, device=like.device)
    if w.shape != (num,) or bool((w < 0).any()):
        raise ValueError(f"class_weights must be {num} non-negative numbers, got {w.tolist()}")
    return w

"""Torch's errors from one mini-batch, said again as what the data did and how to fix it.

The loop checks label values on the first mini-batch of each pass only: checking every one
would make the CPU wait for the GPU at each step. A bad label further on still fails, inside
torch (``IndexError: Target 7 is out of bounds``), and so do a few other mistakes that only
show in the forward pass. ``Trainer`` catches those errors (a ``try`` costs nothing until
something is raised) and raises the clear one built here, chained to torch's (``from err``).
"""

from __future__ import annotations

import torch

from labpkg.core.checks import check_class_target, labels_outside_message

__all__ = ["explain"]

HALF_TYPES = (torch.float16, torch.bfloat16)


def explain(
    err: Exception,
    inputs: torch.Tensor,
    target: torch.Tensor,
    logits: torch.Tensor | None,
    source: tuple[str, int] | None,
    amp: bool,
) -> Exception | None:
    """The clear error for ``err``, raised by the forward pass or the loss; None if unknown.

    Args:
        err: what torch raised.
        inputs: the mini-batch's images (B, C, H, W).
        target: its masks.
        logits: the model's output, or None if the model itself failed.
        source: ``(argument name, 0-based mini-batch)``, e.g. ``("train", 3)``; None when
            unknown.
        amp: whether autocast was on.

    Returns:
        A ``ValueError`` or ``TypeError`` naming the batch and the fix, or None.
    """
    where = "a mini-batch" if source is None else f"mini-batch {source[1]} of {source[0]}"
    text = str(err)
    if isinstance(err, RuntimeError) and inputs.dtype in HALF_TYPES and not amp:
        return TypeError(
            f"{where}: the inputs are {inputs.dtype} images, but the model's weights are "
            "float32 and amp is off; convert them with images.float() (in the dataset), "
            "or pass amp=True to the Trainer to compute in 16 bits"
        )
    if isinstance(err, ValueError) and "Expected more than 1 value per channel" in text:
        return ValueError(
            f"{where} holds one sample, and BatchNorm cannot normalise a single "
            "value per channel in training: pass drop_last=True to the DataLoader (the last, "
            "smaller mini-batch is left out), or pick a batch_size that leaves no lone sample"
        )
    if logits is None or target.is_floating_point():
        return None
    if target.ndim == logits.ndim and target.ndim >= 3 and target.shape[1] == 1:
        try:
            check_class_target(target)  # one rule, one message: (N, 1, H, W) -> squeeze it
        except (TypeError, ValueError) as clear:
            return ValueError(f"{where}: {clear}")
    if "out of bounds" in text and logits.ndim >= 2:
        classes = logits.shape[1]
        outside = (target < 0) | (target >= classes)
        if bool(outside.any()):  # a host read, on the error path only
            message = labels_outside_message(f"{where}'s target", classes, target)
            return ValueError(f"{message} (torch: {text})")
    return None

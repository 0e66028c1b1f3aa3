"""What an exact resume depends on: recorded in every training checkpoint, compared on resume.

A resumed run ends with the weights of an uninterrupted one only if it continues under the
conditions the checkpoint was taken in:

- **the data order**: the dataset's length, the batch size, ``drop_last``, the sampler (shuffled
  or not), the mini-batches per epoch, the loader's worker processes (augmentations drawn in
  workers use the workers' own random generators) and the random generators that the loader,
  its sampler and its dataset's transforms own (their states are saved beside);
- **the grouping of mini-batches into updates**: ``accumulate_grad_batches`` and the number of
  processes (world size);
- **the update rule**: the optimizer's class *and module* (``torch.optim.SGD`` and
  ``labpkg.optim.SGD`` share a name, not their state);
- **the arithmetic**: mixed precision off, bfloat16 or float16 (which adds a GradScaler).

``fingerprint`` records them once per save (no cost in the loop); ``differences`` lists the
fields that changed, and ``refusal`` words the error: the field, its value then and now, and
the fix.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labpkg.core import distributed
from labpkg.core.reproducibility import data_generators

__all__ = ["fingerprint", "differences", "Difference", "refusal", "optimizer_name"]

#: How to get each field back to its saved value (the fix an error names).
FIXES = {
    "dataset_length": "train on the same dataset",
    "batch_size": "pass DataLoader(batch_size=...) as saved",
    "drop_last": "pass DataLoader(drop_last=...) as saved",
    "sampler": "pass DataLoader(shuffle=...) or sampler= as saved",
    "batches_per_epoch": "pass the same batches_per_epoch",
    "num_workers": "pass DataLoader(num_workers=...) as saved",
    "generators": "give the loader, sampler and transforms the same generator= arguments",
    "accumulate_grad_batches": "pass Trainer(accumulate_grad_batches=...) as saved",
    "world_size": "launch as many processes as saved",
    "amp": "pass Trainer(amp=..., amp_dtype=...) as saved",
    "optimizer": "build the same optimizer class: another keeps its state under other names "
    "and cannot load it; or load only the weights: "
    "model.load_state_dict(labpkg.load_checkpoint(path)['model'])",
}


class Difference(NamedTuple):
    """A field of the fingerprint whose value changed between the checkpoint and now."""

    field: str
    saved: Any
    now: Any


def optimizer_name(optimizer: Any) -> str:
    """The optimizer's class with its module, e.g. ``torch.optim.sgd.SGD``."""
    kind = type(optimizer)
    return f"{kind.__module__}.{kind.__qualname__}"


def fingerprint(trainer: Any) -> dict[str, Any]:
    """The conditions ``trainer`` trains under now: ``{"run": {...}, "data": {...} | None}``.

    ``data`` is None before the trainer has seen a training loader (a checkpoint saved before
    the first ``fit``): then any loader may continue it.
    """
    run = {
        "optimizer": optimizer_name(trainer.optimizer),
        "accumulate_grad_batches": trainer.accumulate,
        "world_size": distributed.world_size(),
        "amp": str(trainer.amp_dtype).removeprefix("torch.") if trainer.amp else "off",
    }
    loader = trainer.train_loader
    if loader is None:
        return {"run": run, "data": None}
    data = {
        "dataset_length": len(loader.dataset) if hasattr(loader.dataset, "__len__") else None,
        "batch_size": loader.batch_size,  # None: a batch_sampler makes the batches
        "drop_last": loader.drop_last,
        "sampler": _sampler_kind(loader),
        "batches_per_epoch": trainer.state.batches_per_epoch,
        "num_workers": loader.num_workers,
        "generators": list(data_generators(loader)),  # where each sits; states saved apart
    }
    return {"run": run, "data": data}


def _sampler_kind(loader: Any) -> str:
    """The sampler's class, with what decides its order where the class alone does not."""
    sampler = loader.sampler if loader.batch_size is not None else loader.batch_sampler
    kind = type(sampler).__name__
    if hasattr(sampler, "shuffle") and hasattr(sampler, "seed"):  # DistributedSampler
        return f"{kind}(shuffle={sampler.shuffle}, seed={sampler.seed})"
    if hasattr(sampler, "replacement"):  # RandomSampler
        return f"{kind}(replacement={sampler.replacement}, num_samples={sampler.num_samples})"
    return kind


def differences(saved: dict[str, Any], now: dict[str, Any], part: str) -> list[Difference]:
    """The fields of ``part`` (``"run"`` or ``"data"``) whose values differ; none if the
    checkpoint has no such part (saved before the first ``fit``)."""
    before, after = saved.get(part), now.get(part)
    if before is None or after is None:
        return []
    fields = [k for k in FIXES if k in before or k in after]
    return [
        Difference(k, before.get(k), after.get(k)) for k in fields if before.get(k) != after.get(k)
    ]


def refusal(path: Any, changed: list[Difference], how_to_accept: str | None) -> str:
    """The error message for a resume that cannot be exact: each field, then and now, its fix."""
    lines = [f"{path} cannot resume exactly: the run's conditions changed since it was saved:"]
    for field, saved, now in changed:
        lines.append(f"  {field}: {saved!r} when saved, {now!r} now ({FIXES[field]})")
    if how_to_accept:
        lines.append(how_to_accept)
    return "\n".join(lines)

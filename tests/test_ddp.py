"""Data parallel training: 2 processes on the gloo backend against a 1-process run."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import tiny_data, tiny_model, tiny_trainer
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, WeightedRandomSampler

import labpkg
from labpkg.core import distributed

N, BATCH, WORLD, EPOCHS = 24, 3, 2, 2


class RankZeroProbe(labpkg.Callback):
    rank_zero_only = True

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def on_epoch_end(self, epoch, logs=None):
        self.calls += 1


def _fit(train_loader, val_loader, probe=None):
    trainer = tiny_trainer(tiny_model(seed=3), lr=0.2, metrics=[labpkg.SegmentationMetrics(3)])
    history = trainer.fit(
        train_loader, EPOCHS, val_loader, callbacks=[probe] if probe else [], verbose=0
    )
    return trainer, history


def _gloo_process(rank: int, works, init_file: str, out_dir: str) -> None:
    """One of WORLD processes: join a gloo group, run each ``work(rank)``, save the results."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        results = {work.__name__: work(rank) for work in works}
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def on_two_processes(works, folder) -> list[dict]:
    """Run the module-level functions ``work(rank) -> dict`` one after the other on WORLD gloo
    processes on this CPU; return each rank's ``{work name: dict}`` (tensors and plain
    values, loaded weights-only)."""
    args = (works, str(folder / "init"), str(folder))
    mp.spawn(_gloo_process, args=args, nprocs=WORLD, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Every multi-process case of this module, run in one pair of processes (starting
    interpreters is the slow part)."""
    works = (_train, _evaluate_and_shard, _global_batchnorm, _empty_share)
    return on_two_processes(works, tmp_path_factory.mktemp("gloo"))


def _train(rank: int) -> dict:
    probe = RankZeroProbe()
    # plain loaders, as in a single process: the Trainer shards them itself
    train = DataLoader(tiny_data(N), batch_size=BATCH, shuffle=True)
    val = DataLoader(tiny_data(8, seed=1), batch_size=4)
    trainer, history = _fit(train, val, probe)
    s = trainer.state
    return {
        "counts": [s.batches_per_epoch, s.global_step, s.batches_seen, s.samples_seen],
        "weights": trainer.model.state_dict(),
        "history": history.history,
        "probe_calls": probe.calls,
    }


def test_two_gloo_processes_match_one_process_with_twice_the_batch(ranks):
    ranks = [r["_train"] for r in ranks]

    per_rank = labpkg.batches_per_epoch(N, BATCH, world_size=WORLD)  # ceil(ceil(24/2)/3) = 4
    for r in ranks:
        assert r["counts"] == [per_rank, per_rank * EPOCHS, per_rank * EPOCHS, N // WORLD * EPOCHS]
    assert [r["probe_calls"] for r in ranks] == [EPOCHS, 0]  # side effects on rank 0 only

    sampler = DistributedSampler(tiny_data(N), num_replicas=1, rank=0, shuffle=True, seed=0)
    single_loader = DataLoader(tiny_data(N), batch_size=BATCH * WORLD, sampler=sampler)
    single, history = _fit(single_loader, DataLoader(tiny_data(8, seed=1), batch_size=8))
    assert single.state.global_step == per_rank * EPOCHS  # same number of updates
    for r in ranks:
        for name, value in single.model.state_dict().items():
            torch.testing.assert_close(r["weights"][name], value, rtol=1e-4, atol=1e-5)
        # validation metrics were all-reduced: every rank reports the whole validation set
        for key in ("val_loss", "val_mean_iou", "val_pixel_accuracy"):
            torch.testing.assert_close(
                torch.tensor(r["history"][key]),
                torch.tensor(history.history[key]),
                rtol=1e-4,
                atol=1e-5,
            )


def test_rank_batches_together_are_the_single_process_global_batch():
    data = range(N)
    for epoch in range(3):
        single = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
        single.set_epoch(epoch)
        global_batches = list(DataLoader(list(data), batch_size=BATCH * WORLD, sampler=single))
        per_rank = []
        for rank in range(WORLD):
            sampler = DistributedSampler(data, num_replicas=WORLD, rank=rank, shuffle=True, seed=0)
            sampler.set_epoch(epoch)
            per_rank.append(list(DataLoader(list(data), batch_size=BATCH, sampler=sampler)))
        for step, batch in enumerate(global_batches):
            union = torch.cat([per_rank[r][step] for r in range(WORLD)])
            assert sorted(union.tolist()) == sorted(batch.tolist())


# ------------------------------------------------- validation counts each sample exactly once
ODD = 7  # not a multiple of WORLD: DistributedSampler would pad it with a repeated sample


def _single_process_scores() -> dict[str, float]:
    trainer = tiny_trainer(tiny_model(seed=3), metrics=[labpkg.SegmentationMetrics(3)])
    return trainer.evaluate(DataLoader(tiny_data(ODD, seed=1), batch_size=2))


def _evaluate_and_shard(rank: int) -> dict:
    trainer = tiny_trainer(tiny_model(seed=3), metrics=[labpkg.SegmentationMetrics(3)])
    val = DataLoader(tiny_data(ODD, seed=1), batch_size=2)
    result = {"evaluate": trainer.evaluate(val), "refused": {}}
    # loader options a user chose are kept, or refused with a message; never dropped
    gen = torch.Generator().manual_seed(5)
    kept = distributed.distributed_loader(
        DataLoader(tiny_data(N), batch_size=BATCH, shuffle=True, generator=gen)
    )
    result["generator_kept"] = kept.generator is gen
    weights = torch.ones(N)
    for name, options in {
        "sampler": {"sampler": WeightedRandomSampler(weights, N)},
        "batch_sampler": {"batch_sampler": BatchSampler(range(N), BATCH, False)},
    }.items():
        try:
            distributed.distributed_loader(DataLoader(tiny_data(N), **options))
        except ValueError as error:
            result["refused"][name] = str(error)
    # a dataset that draws new samples each epoch hears set_epoch through a Subset
    shapes = labpkg.SyntheticShapes(8, labpkg.ShapesConfig(size=16), fresh_each_epoch=True)
    train, _ = labpkg.train_val_split(shapes, 0.25)
    first = shapes.images.clone()
    distributed.set_epoch(distributed.distributed_loader(DataLoader(train, batch_size=2)), 1)
    result["fresh_after_set_epoch"] = not torch.equal(first, shapes.images)
    return result


def test_validation_on_an_odd_sized_set_equals_one_process_and_loader_options_are_kept(ranks):
    ranks = [r["_evaluate_and_shard"] for r in ranks]
    single = _single_process_scores()
    for r in ranks:
        # bitwise would be too strict for the loss (a different summation order), not counts
        for key in ("pixel_accuracy", "mean_iou", "dice"):
            assert r["evaluate"][key] == single[key], key  # from summed integer counts
        assert abs(r["evaluate"]["loss"] - single["loss"]) < 1e-6
        assert r["generator_kept"] and r["fresh_after_set_epoch"]
        assert "WeightedRandomSampler" in r["refused"]["sampler"]
        assert "BatchSampler" in r["refused"]["batch_sampler"]


# --------------------------------- a share that makes no mini-batch is refused on every process
def _empty_share(rank: int) -> dict:
    trainer = tiny_trainer(tiny_model(seed=3))
    train = DataLoader(tiny_data(1), batch_size=1, drop_last=True)  # one process: one batch
    try:
        trainer.fit(train, 1, verbose=0)
    except ValueError as err:
        return {"error": str(err), "global_step": trainer.state.global_step}
    return {"error": None, "diverged": trainer.state.diverged}


def test_a_share_without_a_mini_batch_raises_the_same_clear_error_on_every_process(ranks):
    results = [r["_empty_share"] for r in ranks]
    assert results[0]["error"] == results[1]["error"]  # every process raises: none waits
    assert "no mini-batch on each of the 2 processes: 1 samples split 2 ways" in (
        results[0]["error"] or ""
    )
    assert all(r["global_step"] == 0 for r in results)


# ------------------------------------------------ BatchNorm over the global batch, on CPU
def _global_batchnorm(rank: int) -> dict:
    from labpkg.nn.batchnorm import GlobalBatchNorm2d

    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)[rank * 4 : rank * 4 + 4].requires_grad_()  # my half
    layer = GlobalBatchNorm2d(3)
    with _counting_all_reduces() as calls:
        y = layer(x)
        forward_calls = len(calls)
        (y * torch.arange(y.numel()).reshape(y.shape)).sum().backward()  # an uneven loss
    return {
        "y": y.detach(),
        "dx": x.grad,
        "dw": layer.weight.grad,
        "mean": layer.running_mean,
        "all_reduces": [forward_calls, len(calls) - forward_calls],
    }


@contextlib.contextmanager
def _counting_all_reduces():
    """Count ``torch.distributed.all_reduce`` calls (the autograd-aware all-reduce of
    ``torch.distributed.nn.functional`` calls it in its forward and in its backward)."""
    calls, original = [], dist.all_reduce

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    dist.all_reduce = counted
    try:
        yield calls
    finally:
        dist.all_reduce = original


def test_global_batchnorm_on_two_processes_equals_batchnorm_on_the_whole_batch(ranks):
    ranks = [r["_global_batchnorm"] for r in ranks]
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4).requires_grad_()
    layer = torch.nn.BatchNorm2d(3)
    y = layer(x)
    weights = torch.cat([torch.arange(y[:4].numel())] * 2).reshape(y.shape)  # as each rank
    (y * weights).sum().backward()
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach())
    torch.testing.assert_close(torch.cat([r["dx"] for r in ranks]), x.grad)
    # summed in another order: float32 rounding of values near 100
    torch.testing.assert_close(
        ranks[0]["dw"] + ranks[1]["dw"], layer.weight.grad, rtol=1e-5, atol=0
    )
    for r in ranks:
        torch.testing.assert_close(r["mean"], layer.running_mean)
        # one all-reduce in forward (the statistics), one in backward (their gradients)
        assert r["all_reduces"] == [1, 1]


def test_converting_keeps_each_layers_mode_and_frozen_parameters_as_torch_does():
    from labpkg.nn.batchnorm import GlobalBatchNorm2d, convert_global_batchnorm

    model = tiny_model(batch_norm=True).eval()
    frozen = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    frozen.weight.requires_grad_(False)
    converted = convert_global_batchnorm(model)
    layers = [m for m in converted.modules() if isinstance(m, GlobalBatchNorm2d)]
    assert layers and not any(layer.training for layer in layers)
    assert [p.requires_grad for p in converted.parameters()].count(False) == 1
    sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(tiny_model(batch_norm=True).eval())
    assert not any(m.training for m in sync.modules())  # torch's conversion keeps the mode too


# ------------------------------------------- torchrun with more processes than GPUs
@pytest.fixture
def torchrun_env(monkeypatch):
    """The environment of torchrun's second process on a machine with one GPU."""
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    joined = []
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: joined.append(backend))
    return joined


def test_two_processes_on_one_gpu_are_refused_before_joining_with_the_way_out(torchrun_env):
    with pytest.raises(RuntimeError, match=r"2 processes .* 1 GPU.*device='cpu'"):
        distributed.init_from_env(verbose=False)
    assert torchrun_env == []  # refused before joining: no process waits for a peer


def test_device_cpu_joins_with_gloo_on_the_cpu_where_gpus_exist(torchrun_env):
    assert distributed.init_from_env(verbose=False, device="cpu") == torch.device("cpu")
    assert torchrun_env == ["gloo"]


def test_the_data_parallel_chapter_runs_its_processes_on_the_cpu_everywhere():
    # a one-GPU Colab would otherwise start two processes on one GPU (refused, above)
    import json
    from pathlib import Path

    chapter = Path(__file__).resolve().parents[1] / "lessons" / "16_data_parallel.ipynb"
    code = "".join(
        "".join(c["source"]) for c in json.loads(chapter.read_text())["cells"]
        if c["cell_type"] == "code"
    )  # fmt: skip
    assert "labpkg.Trainer(" in code and 'device="cpu"' in code

"""``python -m labpkg train``: accounting first, then training, a checkpoint and a plot."""

from __future__ import annotations

import subprocess

import torch
from helpers import run_python


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return run_python("-m", "labpkg", *args, cwd=cwd, timeout=300)


def test_train_prints_the_accounting_and_saves_checkpoint_and_plot(tmp_path):
    proc = _cli(
        "train",
        "--epochs",
        "2",
        "--samples",
        "50",
        "--batch-size",
        "16",
        "--val-samples",
        "16",
        "--image-size",
        "16",
        "--base-width",
        "4",
        "--out",
        "run",
        "--verbose",
        "2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "mini-batches / epoch  4" in out  # ceil(50 / 16)
    assert "total updates         8" in out
    assert out.index("total updates") < out.index("epoch 1/2")  # printed before training
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert state["counters"]["global_step"] in (4, 8)
    assert (tmp_path / "run" / "history.png").stat().st_size > 1000


def test_bad_arguments_exit_non_zero_with_a_clear_message(tmp_path):
    proc = _cli("train", "--batch-size", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "--batch-size: must be a positive integer" in proc.stderr
    proc = _cli("train", "--image-size", "30", cwd=tmp_path)
    assert proc.returncode == 2 and "multiple of 8" in proc.stderr
    proc = _cli("train", "--optimizer", "adagrad", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_accounting_under_data_parallelism_counts_per_process_and_global_batch():
    from labpkg.cli import accounting, build_parser

    args = build_parser().parse_args(["train", "--samples", "1000", "--batch-size", "50"])
    text = accounting(args, world=2)
    assert "mini-batches / epoch  10" in text  # 500 samples per process / 50
    assert "effective batch       100" in text

"""``python -m labpkg train``: accounting first, then training, a checkpoint and a plot.

The command runs in this process through ``main(argv)`` (what ``python -m labpkg`` calls);
one test starts the real ``python -m labpkg`` to check the entry point itself.
"""

from __future__ import annotations

import pytest
import torch
from helpers import run_python

from labpkg.cli import main


def test_train_prints_the_accounting_and_saves_checkpoint_and_plot(tmp_path, capsys):
    out_dir = tmp_path / "run"
    status = main(
        ["train", "--epochs", "2", "--samples", "50", "--batch-size", "16",
         "--val-samples", "16", "--image-size", "16", "--base-width", "4",
         "--out", str(out_dir), "--verbose", "2"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "mini-batches / epoch  4" in out  # ceil(50 / 16)
    assert "total updates         8" in out
    assert out.index("total updates") < out.index("epoch 1/2")  # printed before training
    state = torch.load(out_dir / "best.pt", weights_only=True)
    assert state["counters"]["global_step"] in (4, 8)
    assert (out_dir / "history.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--image-size", "30"], "multiple of 8"),
        (["--optimizer", "adagrad"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_with_status_2_and_a_clear_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_python_dash_m_labpkg_runs_the_command_line(tmp_path):
    proc = run_python("-m", "labpkg", "train", "--batch-size", "0", cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "--batch-size: must be a positive integer" in proc.stderr


def test_accounting_under_data_parallelism_counts_per_process_and_global_batch():
    from labpkg.cli import accounting, build_parser

    args = build_parser().parse_args(["train", "--samples", "1000", "--batch-size", "50"])
    text = accounting(args, world=2)
    assert "mini-batches / epoch  10" in text  # 500 samples per process / 50
    assert "effective batch       100" in text

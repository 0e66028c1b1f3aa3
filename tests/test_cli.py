"""``python -m labpkg train``: accounting first, then training, checkpoints and a plot.

The command runs in this process through ``main(argv)`` (what ``python -m labpkg`` calls);
two tests start the real ``python -m labpkg``: one checks the entry point itself, one that a
SIGTERM (``kill``, a job scheduler, Colab) stops the run the way Ctrl-C does.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest
import torch
from helpers import run_python

from labpkg.cli import build_parser, main, recipe_of
from labpkg.nn.metrics import SegmentationMetrics
from labpkg.recipes import build_recipe

#: the smallest run that trains: 8 samples of 16x16 in mini-batches of 4, a U-Net of width 4
TINY = ["--samples", "8", "--batch-size", "4", "--val-samples", "4", "--image-size", "16",
        "--base-width", "4", "--verbose", "0"]  # fmt: skip


def train(out, *args: str) -> int:
    return main(["train", *TINY, "--out", str(out), *args])


# ------------------------------------------------------------------------ a run's outputs
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
    assert state["state"]["global_step"] in (4, 8)
    assert torch.load(out_dir / "last.pt", weights_only=True)["state"]["global_step"] == 8
    assert (out_dir / "history.png").stat().st_size > 1000


def test_out_fills_in_option_names_in_braces_before_training(tmp_path):
    assert train(tmp_path / "lr{lr}_bs{batch_size}", "--epochs", "1", "--lr", "0.01") == 0
    assert (tmp_path / "lr0.01_bs4" / "last.pt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["lr0.01_bs4"]


def test_the_options_describe_a_recipe_that_build_recipe_builds():
    args = build_parser().parse_args(
        ["train", *TINY, "--optimizer", "sgd", "--accumulate", "2", "--drop-last", "--amp"]
    )
    recipe = recipe_of(args)
    assert (recipe.samples_per_epoch, recipe.batch_size, recipe.optimizer) == (8, 4, "sgd")
    assert recipe.accumulate_grad_batches == 2 and recipe.drop_last and recipe.amp is True
    assert recipe.schedule == "constant" and recipe.weight_decay == 0.0
    optimizer = build_recipe(recipe).trainer.optimizer  # the recipe's SGD: Nesterov momentum
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["nesterov"]


# ---------------------------------------------------------------------------- --resume
def test_resume_continues_the_run_exactly_where_its_last_checkpoint_stands(tmp_path, capsys):
    assert train(tmp_path / "whole", "--epochs", "2") == 0
    assert train(tmp_path / "split", "--epochs", "1") == 0
    last = str(tmp_path / "split/last.pt")  # after epoch 1
    assert train(tmp_path / "split", "--epochs", "2", "--resume", last) == 0
    whole = torch.load(tmp_path / "whole/last.pt", weights_only=True)
    split = torch.load(tmp_path / "split/last.pt", weights_only=True)
    assert split["state"] == whole["state"]  # epoch 2 trained once, epoch 1 not again
    for key, weight in whole["model"].items():
        assert torch.equal(split["model"][key], weight), key


def test_a_resumed_run_stopped_in_its_first_epoch_keeps_the_earlier_outputs(
    tmp_path, monkeypatch, capsys
):
    assert train(tmp_path / "run", "--epochs", "1") == 0
    before = {name: (tmp_path / "run" / name).read_bytes() for name in ("last.pt", "history.png")}

    def terminate_in_first_batch(self, logits, target):  # as `kill` would, mid-epoch
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(SegmentationMetrics, "update", terminate_in_first_batch)
    status = train(tmp_path / "run", "--epochs", "3", "--resume", str(tmp_path / "run/last.pt"))
    assert status == 128 + signal.SIGTERM
    assert "not drawn (no epoch finished)" in capsys.readouterr().out
    assert {name: (tmp_path / "run" / name).read_bytes() for name in before} == before


def test_help_documents_resume(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0 and "--resume" in capsys.readouterr().out


def test_resume_from_a_missing_file_is_refused_before_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train(tmp_path / "run", "--resume", str(tmp_path / "nothing.pt"))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--resume" in err and "nothing.pt" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (["--base-width", "8"], "different model"),
        (["--optimizer", "sgd"], "optimizer"),
    ],
)
def test_resume_under_another_setup_is_refused_with_a_message(tmp_path, capsys, changed, message):
    assert train(tmp_path / "run", "--epochs", "1") == 0
    capsys.readouterr()
    status = train(tmp_path / "run", "--epochs", "2", "--resume", str(tmp_path / "run/last.pt"),
                   *changed)  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and message in err
    assert "Traceback" not in err


# ------------------------------------------------ bad arguments: refused before training
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size: must be a positive integer"),
        (["--image-size", "30"], "multiple of 8"),
        (["--optimizer", "adagrad"], "invalid choice"),
        (["--device", "foo"], "--device: unknown device 'foo'"),
        (["--seed", str(2**70)], "--seed: must be an integer from 0 to"),
        (["--out", "runs/{epoch}"], "--out: {epoch} is not an option"),
        (["--out", "runs/exp{lr:d}"], "--out: cannot fill in"),
        (["--out", "runs/exp{{lr}}"], "--out: a brace"),
    ],
)
def test_bad_arguments_exit_with_status_2_and_a_clear_message(args, message, capsys, tmp_path,
                                                             monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # were one accepted, its run would write here
    with pytest.raises(SystemExit) as exit_:
        main(["train", *TINY, *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before training: nothing written


def test_python_dash_m_labpkg_runs_the_command_line(tmp_path):
    proc = run_python("-m", "labpkg", "train", "--batch-size", "0", cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "--batch-size: must be a positive integer" in proc.stderr


# --------------------------------------------- a run that cannot finish keeps what it wrote
def test_disk_full_is_one_line_naming_the_folder_and_the_files_kept(tmp_path, monkeypatch, capsys):
    real_save, calls = torch.save, []

    def save_until_full(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) > 2:  # epoch 1 writes best.pt and last.pt; epoch 2 finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_full)
    status = train(tmp_path / "run", "--epochs", "3")
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert str(tmp_path / "run") in err and "No space left on device" in err
    assert "kept best.pt, last.pt" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt"]


def test_sigterm_stops_like_ctrl_c_writing_the_history_and_no_temporary_file(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "labpkg", "train", *TINY, "--epochs", "100000",
               "--verbose", "2", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:  # fmt: skip
        for line in proc.stdout:  # an epoch has ended: training is under way
            if line.startswith("epoch 1/"):
                break
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "history plot" in stdout and (out / "history.png").stat().st_size > 1000
    assert torch.load(out / "last.pt", weights_only=True)["state"]["global_step"] >= 2
    assert not [p.name for p in out.iterdir() if p.suffix == ".tmp"]

"""`torchrun` on a reader's own script: the Trainer joins the process group by itself.

The script below is all a reader writes: a model, a plain DataLoader, a Trainer and ``fit``.
Launched as ``torchrun --nproc_per_node=2`` it must train as *one* data-parallel run (each
process reads half of every epoch, DDP averages the gradients), not as two independent copies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import labpkg

N, BATCH, WORLD, EPOCHS = 24, 3, 2, 2

DATA = """
gen = torch.Generator().manual_seed(0)
images = torch.rand(24, 3, 8, 8, generator=gen)
masks = torch.randint(0, 3, (24, 8, 8), generator=gen)
"""

MODEL = """
torch.manual_seed(3)
model = labpkg.UNet(labpkg.UNetConfig(num_classes=3, base_width=4, depth=2, batch_norm=False))
"""

USER_SCRIPT = f"""
import os, sys
import torch
from torch.utils.data import DataLoader, TensorDataset
import labpkg
{DATA}{MODEL}
trainer = labpkg.Trainer(model, torch.optim.SGD(model.parameters(), lr=0.2), "cross_entropy")
loader = DataLoader(TensorDataset(images, masks), batch_size={BATCH}, shuffle=True)
trainer.fit(loader, epochs={EPOCHS}, verbose=0)

s = trainer.state
torch.save(
    {{
        "rank": int(os.environ["RANK"]),
        "pid": os.getpid(),
        "world": torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1,
        "samples_seen": s.samples_seen,
        "weights": trainer.model.state_dict(),
    }},
    os.path.join(sys.argv[1], f"rank{{os.environ['RANK']}}.pt"),
)
"""


def _single_process_weights() -> dict[str, torch.Tensor]:
    """The same data and model in one process, with the doubled (global) batch."""
    scope: dict = {"torch": torch, "labpkg": labpkg}
    exec(textwrap.dedent(DATA + MODEL), scope)
    dataset = TensorDataset(scope["images"], scope["masks"])
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    model = scope["model"]
    trainer = labpkg.Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.2), "cross_entropy", device="cpu"
    )
    trainer.fit(DataLoader(dataset, batch_size=BATCH * WORLD, sampler=sampler), EPOCHS, verbose=0)
    return trainer.model.state_dict()


def test_torchrun_on_a_readers_script_trains_one_data_parallel_model(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(USER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={WORLD}", str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("labpkg: started by torchrun") == 1  # said once, by rank 0

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["pid"] != ranks[1]["pid"]
    # each process read half of every epoch (two unsynchronised copies would read all of it)
    assert [r["samples_seen"] for r in ranks] == [N // WORLD * EPOCHS] * WORLD
    assert [r["world"] for r in ranks] == [WORLD] * WORLD
    single = _single_process_weights()
    for name, value in single.items():
        assert torch.equal(ranks[0]["weights"][name], ranks[1]["weights"][name]), name
        torch.testing.assert_close(ranks[0]["weights"][name], value, rtol=1e-4, atol=1e-5)

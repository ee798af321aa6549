"""Fault injection: SIGTERM and SIGINT before the first step, in the middle of an epoch and in the
middle of a checkpoint write, and SIGKILL of a loader worker. Every stopped `avssl pretrain` exits
non-zero with its message (143 SIGTERM, 130 SIGINT, 1 a dead worker), and the same command then
resumes to the losses of an uninterrupted run."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from corpus import write_config

from avssl.cli import main
from avssl.train.checkpoint_io import safe_load

REPO = Path(__file__).resolve().parents[2]

# argv: threads, fault, signal name, avssl arguments...; the fault is injected by patching the code
DRIVER = """
import os, signal, sys
import torch
torch.set_num_threads(int(sys.argv[1]))
fault, sig = sys.argv[2], getattr(signal, sys.argv[3])
from avssl.train import callbacks, checkpoint_io, table
from avssl.data import dataset

def hit():
    os.kill(os.getpid(), sig)

if fault == "start":  # while the run loads its table: before the first step
    real_load = table.load_table
    def load_table(*args, **kwargs):
        hit()
        return real_load(*args, **kwargs)
    table.load_table = load_table
elif fault == "mid-epoch":  # after step 1 of an epoch of 2 steps
    real_end = callbacks.Throughput.on_train_batch_end
    def on_train_batch_end(self, trainer, *args):
        real_end(self, trainer, *args)
        if trainer.global_step == 1:
            hit()
    callbacks.Throughput.on_train_batch_end = on_train_batch_end
elif fault == "mid-write":  # inside the second checkpoint write (step 2)
    real_save, calls = torch.save, []
    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            hit()
        return real_save(obj, f, *args, **kwargs)
    checkpoint_io.torch.save = save
elif fault == "worker":  # a loader worker dies building the first batch of epoch 1
    real_items = dataset.ClipDataset.__getitems__
    def getitems(self, keys):
        if torch.utils.data.get_worker_info() is not None and keys[0].epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_items(self, keys)
    dataset.ClipDataset.__getitems__ = getitems
from avssl.cli import main
sys.exit(main(sys.argv[4:]))
"""

# fault, signal, extra overrides, exit code, step of the checkpoint the stopped run leaves (None: none)
CASES = [
    ("start", "SIGTERM", [], 143, None),
    ("start", "SIGINT", [], 130, None),
    ("mid-epoch", "SIGTERM", ["trainer.checkpoint_every_n_steps=10"], 143, 1),
    ("mid-epoch", "SIGINT", ["trainer.checkpoint_every_n_steps=10"], 130, 1),
    ("mid-write", "SIGTERM", [], 143, 2),
    ("mid-write", "SIGINT", [], 130, 2),
    ("worker", "SIGKILL", ["data.num_workers=1"], 1, 2),
]


def _losses(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    # 4 files, batch 2: 2 steps an epoch; 3 steps reach into the second epoch
    return write_config(tmp_path_factory.mktemp("config") / "c.yaml", trainer={"max_steps": 3})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, manifest, config):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    assert main(["pretrain", "--config", config, "--data", str(manifest), "--out", str(run_dir)]) == 0
    return _losses(run_dir)


@pytest.mark.parametrize("fault, signame, extra, code, saved", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_stopped_run_exits_non_zero_and_resumes_to_the_same_losses(
        tmp_path, manifest, config, reference, fault, signame, extra, code, saved):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    run_dir = tmp_path / "run"
    args = ["pretrain", "--config", config, "--data", str(manifest), "--out", str(run_dir)]
    proc = subprocess.run([sys.executable, str(script), str(torch.get_num_threads()), fault, signame, *args, *extra],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last_line = proc.stderr.strip().splitlines()[-1]
    if signame == "SIGKILL":
        assert "data loader worker process died" in last_line and "run the same command to resume" in last_line
    else:
        assert f"stopped at step {saved or 0} by {signame}; run the same command to resume" in last_line, last_line
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if saved is None:
        assert not checkpoint.exists()
    else:
        assert safe_load(checkpoint)["global_step"] == saved

    assert main(args) == 0  # the same command resumes
    got = _losses(run_dir)
    assert sorted(got) == [0, 1, 2], "earlier rows kept, each step logged once"
    for step in range(3):
        assert got[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), step

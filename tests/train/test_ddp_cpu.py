"""Two DDP processes on CPU (gloo): the run completes, each epoch's samples are split between the
ranks without overlap and together cover every file; only rank 0 takes the run folder's lock; a
SIGTERM stops every rank after the same step with a checkpoint; a bad file is quarantined on both."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from train_support import REPO, losses, run_cli

from avssl.data.probing import build_manifest, probe_paths
from avssl.train.checkpoint_io import safe_load


@pytest.mark.slow
def test_two_process_ddp_run_shards_each_epoch(tmp_path, manifest, tiny_config):
    keys = tmp_path / "keys"
    run_dir = tmp_path / "run"
    # 8 files, 2 ranks, batch 4: one step per epoch, so 3 steps are 3 whole epochs
    proc = run_cli("pretrain", "--config", str(tiny_config), "--data", str(manifest), "--out", str(run_dir),
                   "trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                   "trainer.max_steps=3", env={"AVSSL_RECORD_KEYS": str(keys)}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 3

    consumed = {}
    for rank in (0, 1):
        for line in (keys / f"keys-rank{rank}.csv").read_text().split():
            step, index, epoch, _ = map(int, line.split(","))
            consumed.setdefault((rank, epoch), []).append(index)
    for epoch in range(3):
        rank0, rank1 = consumed[(0, epoch)], consumed[(1, epoch)]
        assert len(rank0) == len(rank1) == 4
        assert not set(rank0) & set(rank1), f"epoch {epoch}: ranks share samples"
        assert sorted(rank0 + rank1) == list(range(8)), f"epoch {epoch}: not every file was seen"
    assert consumed[(0, 0)] != consumed[(0, 1)], "each epoch has its own order"


# rank 0 alone receives SIGTERM after step 2 (as from `kill PID` of the launching process)
SIGTERM_RANK0_AT_STEP_2 = """
import os, signal, sys
from avssl.train import callbacks
real = callbacks.Throughput.on_train_batch_end
def on_train_batch_end(self, trainer, *args):
    real(self, trainer, *args)
    if trainer.global_step == 2 and trainer.global_rank == 0:
        os.kill(os.getpid(), signal.SIGTERM)
callbacks.Throughput.on_train_batch_end = on_train_batch_end
from avssl.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigterm_to_rank_0_stops_every_rank_at_one_step_and_quarantine_spans_ranks(tmp_path, videos, tiny_config):
    folder = tmp_path / "videos"
    folder.mkdir()
    paths = [str(shutil.copy(p, folder)) for p in videos]
    manifest = tmp_path / "train.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    with open(paths[3], "r+b") as f:
        f.write(b"\0" * 4096)  # damaged after probing
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(SIGTERM_RANK0_AT_STEP_2))
    run_dir = tmp_path / "run"
    args = ["pretrain", "--config", str(tiny_config), "--data", str(manifest), "--out", str(run_dir),
            "trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_steps=4",
            "trainer.checkpoint_every_n_steps=10"]
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 143, proc.stderr[-3000:]
    # both ranks (the launching process and the one it started) stop after the same step
    assert proc.stderr.count("stopped at step 2 by SIGTERM; run the same command to resume") == 2, proc.stderr[-3000:]
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 2

    proc = run_cli(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(losses(run_dir / "metrics.csv")) == [0, 1, 2, 3]
    with open(run_dir / "bad_files.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["step"]]
    # 8 files, 2 ranks, batch 4: one step an epoch; the damaged file fails in epoch 0 only, on either rank
    assert {(r["path"], r["epoch"]) for r in rows} == {(paths[3], "0")}

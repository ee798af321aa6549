"""A run killed with SIGKILL after a checkpoint resumes to the same losses as an uninterrupted run;
a truncated last.ckpt falls back to last.prev.ckpt; a resume at an epoch's end starts the next epoch."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from train_support import REPO, TINY, losses, tiny

from avssl.train.checkpoint_io import safe_load
from avssl.train.engine import pretrain

KILL_SCRIPT = """
import os, signal, sys
import lightning as L
import torch
from avssl.methods.configs import load_config
from avssl.train.engine import pretrain

class KillAfterStep(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == {step}:
            os.kill(os.getpid(), signal.SIGKILL)

# float sums depend on the number of threads: run with the same count as the reference run
torch.set_num_threads(int(sys.argv[4]))
pretrain(load_config(sys.argv[1]), sys.argv[2], sys.argv[3], callbacks=[KillAfterStep()])
"""


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, manifest, uninterrupted):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT.format(step=4)))
    run_dir = tmp_path / "run"
    threads = str(torch.get_num_threads())
    proc = subprocess.run([sys.executable, str(script), str(config), str(manifest), str(run_dir), threads],
                          capture_output=True, text=True, timeout=180, cwd=REPO)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # killed at step 4: the last complete checkpoint is step 3; rows of step 3 may have been written
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 3

    # the same command again, with loader workers this time (they fetch ahead of training)
    pretrain(tiny(**{"data.num_workers": 2}), manifest, run_dir)

    expected, got = losses(uninterrupted / "metrics.csv"), losses(run_dir / "metrics.csv")
    assert sorted(got) == list(range(6)), "earlier rows kept, each step logged once"
    for step in range(6):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step


def test_truncated_last_checkpoint_falls_back_to_previous(tmp_path, manifest, uninterrupted, caplog):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # a write cut short
    # resuming needs more steps than the finished run; the run resumes from step 3 (last.prev.ckpt)
    pretrain(tiny(**{"trainer.max_steps": 6}), manifest, run_dir)
    assert "truncated or corrupt" in caplog.text and "last.prev.ckpt" in caplog.text
    assert (run_dir / "checkpoints" / "last.ckpt.corrupt").exists()
    assert safe_load(last)["global_step"] == 6
    expected, got = losses(uninterrupted / "metrics.csv"), losses(run_dir / "metrics.csv")
    for step in range(3, 6):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step


def test_a_refused_resume_leaves_the_truncated_last_checkpoint_where_it_was(tmp_path, manifest, uninterrupted):
    from avssl.config.typed import ConfigError

    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match="optim.lr"):  # last.prev.ckpt's config differs: no resume
        pretrain(tiny(**{"trainer.max_steps": 6, "optim.lr": 0.5}), manifest, run_dir)
    assert last.read_bytes() == data[: len(data) // 2]
    assert not (run_dir / "checkpoints" / "last.ckpt.corrupt").exists()


def test_resume_at_epoch_end_with_workers_starts_the_next_epoch(tmp_path, manifest, uninterrupted, monkeypatch):
    from avssl.data.sampling import ResumableDistributedSampler

    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)  # ended at step 6: the end of epoch 2
    monkeypatch.setenv("AVSSL_RECORD_KEYS", str(tmp_path / "keys"))
    pretrain(tiny(**{"trainer.max_steps": 8, "data.num_workers": 2}), manifest, run_dir)
    rows = [tuple(map(int, line.split(","))) for line in (tmp_path / "keys" / "keys-rank0.csv").read_text().split()]
    expected = ResumableDistributedSampler(8, num_replicas=1, rank=0, seed=0).rank_indices(epoch=3)
    assert [(step, index, epoch) for step, index, epoch, _ in rows] == [
        (6 + i // 4, int(index), 3) for i, index in enumerate(expected)
    ]

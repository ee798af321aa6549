"""A run SIGKILLed in the middle of a checkpoint write resumes from the last complete checkpoint to the
same losses; a DataLoader worker that segfaults makes `avssl pretrain` exit 1 with a clear message."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from corpus import write_config

from avssl.cli import main
from avssl.train.checkpoint_io import safe_load

REPO = Path(__file__).resolve().parents[2]

# the second checkpoint write (step 2) writes part of the file, says so, then hangs until killed
HANG_IN_WRITE = """
import sys, time
import torch
from avssl.train import checkpoint_io
torch.set_num_threads(int(sys.argv[2]))
real_save, calls = torch.save, []
def slow_save(obj, f):
    calls.append(1)
    if len(calls) == 2:
        f.write(b"PK\\x03\\x04 partial")
        f.flush()
        open(sys.argv[1], "w").close()
        time.sleep(120)
    real_save(obj, f)
checkpoint_io.torch.save = slow_save
from avssl.cli import main
sys.exit(main(sys.argv[3:]))
"""

# a loader worker dies on its first sample, as a decoder segfault would kill it
SEGFAULT_IN_WORKER = """
import os, signal, sys
import torch.utils.data
from avssl.data import dataset
real = dataset.ClipDataset.__getitems__
def crashing(self, keys):
    if torch.utils.data.get_worker_info() is not None:
        os.kill(os.getpid(), signal.SIGSEGV)
    return real(self, keys)
dataset.ClipDataset.__getitems__ = crashing  # the loader asks for a whole batch
from avssl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _losses(run_dir: Path) -> dict[int, float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


@pytest.mark.slow
def test_killed_during_a_checkpoint_write_resumes_from_the_last_complete_one(tmp_path, manifest):
    config = write_config(tmp_path / "c.yaml", trainer={"max_steps": 3})
    reference = tmp_path / "reference"
    assert main(["pretrain", "--config", config, "--data", str(manifest), "--out", str(reference)]) == 0

    run_dir, marker = tmp_path / "run", tmp_path / "writing"
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent(HANG_IN_WRITE))
    args = ["pretrain", "--config", config, "--data", str(manifest), "--out", str(run_dir)]
    proc = subprocess.Popen([sys.executable, str(script), str(marker), str(torch.get_num_threads()), *args],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run never reached its second checkpoint write"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    folder = run_dir / "checkpoints"
    assert [p.name for p in folder.glob(".last.ckpt.*.tmp")], "the write was cut in its temp file"
    assert safe_load(folder / "last.ckpt")["global_step"] == 1, "last.ckpt is still the complete step-1 file"

    assert main(args) == 0  # the same command resumes
    assert not list(folder.glob("*.tmp")), "the dead write's temp file is removed"
    assert safe_load(folder / "last.ckpt")["global_step"] == 3
    expected, got = _losses(reference), _losses(run_dir)
    assert sorted(got) == [0, 1, 2]
    for step in range(3):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step


def test_a_segfault_in_a_loader_worker_exits_1_with_a_message(tmp_path, manifest):
    script = tmp_path / "segv.py"
    script.write_text(textwrap.dedent(SEGFAULT_IN_WORKER))
    proc = subprocess.run([sys.executable, str(script), "pretrain", "--config", write_config(tmp_path / "c.yaml"),
                           "--data", str(manifest), "--out", str(tmp_path / "run"), "data.num_workers=1"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 1, proc.stderr[-2000:]
    message = proc.stderr.splitlines()[-1]
    assert "data loader worker process died" in message and "Segmentation fault" in message, message
    assert "Traceback" not in proc.stderr

"""The run folder: one run at a time (a second run exits 2 naming the holder's pid; the lock dies with
its holder, even by SIGKILL), no overwriting a folder of other files, a writability check before any
work, and a disk that fails mid-run (full, read-only) reported in one line with exit 1."""

from __future__ import annotations

import errno
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml
from train_support import REPO, TINY, losses

from avssl.cli import main
from avssl.train import checkpoint_io, csv_logger
from avssl.train.checkpoint_io import safe_load

# pauses the run in its third step until killed (the step-2 checkpoint and rows 0, 1 are written),
# and says so in the file argv[1]
PAUSE_AFTER_FIRST_STEP = """
import sys, time
import torch
torch.set_num_threads(int(sys.argv[2]))
from avssl.train import callbacks
real = callbacks.Throughput.on_train_batch_end
def pause(self, trainer, *args):
    real(self, trainer, *args)
    if trainer.global_step == 3:
        open(sys.argv[1], "w").close()
        time.sleep(120)
callbacks.Throughput.on_train_batch_end = pause
from avssl.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _config(folder: Path, **trainer) -> str:
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({**TINY, "trainer": {**TINY["trainer"], **trainer}}))
    return str(path)


def test_a_second_run_on_a_run_dir_in_use_exits_2_naming_the_holder(tmp_path, manifest, capsys):
    run_dir, marker = tmp_path / "run", tmp_path / "paused"
    args = ["pretrain", "--config", _config(tmp_path, max_steps=4, checkpoint_every_n_steps=2),
            "--data", str(manifest), "--out", str(run_dir)]
    script = tmp_path / "pause.py"
    script.write_text(textwrap.dedent(PAUSE_AFTER_FIRST_STEP))
    first = subprocess.Popen([sys.executable, str(script), str(marker), str(torch.get_num_threads()), *args],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the first run never reached its third step"
            time.sleep(0.1)
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and str(run_dir) in err, err
    finally:
        first.send_signal(signal.SIGKILL)  # a lock must not outlive its holder
        first.wait(timeout=30)
    assert main(args) == 0
    assert sorted(losses(run_dir / "metrics.csv")) == [0, 1, 2, 3], "one run's rows, each step once"


def test_a_folder_of_other_files_is_refused_and_left_untouched(tmp_path, manifest, capsys):
    folder = tmp_path / "experiment"
    folder.mkdir()
    config = Path(_config(folder))
    mine = config.with_name("config.yaml")
    config.rename(mine)  # the user's own config.yaml, in the folder given as --out
    (folder / "notes.txt").write_text("my notes")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    code = main(["pretrain", "--config", str(mine), "--data", str(manifest), "--out", str(folder)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(folder) in err and ("config.yaml" in err or "notes.txt" in err), err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "nothing written or removed"


def test_an_empty_folder_takes_a_run(tmp_path, manifest):
    folder = tmp_path / "empty"
    folder.mkdir()
    assert main(["pretrain", "--config", _config(tmp_path, max_steps=1), "--data", str(manifest),
                 "--out", str(folder)]) == 0
    assert (folder / "config.yaml").read_text().startswith("# avssl pretrain")


def test_an_out_below_a_file_exits_2_before_any_work(tmp_path, manifest, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["pretrain", "--config", _config(tmp_path), "--data", str(manifest), "--out", str(blocker / "run")])
    assert code == 2
    assert str(blocker / "run") in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is needed to run as an unprivileged user")
def test_a_read_only_out_exits_2_naming_it():
    # root writes anywhere: run as `nobody` below a folder it may read but not write
    folder = Path(tempfile.mkdtemp(prefix="avssl-readonly-"))
    try:
        folder.chmod(0o755)
        (folder / "run").mkdir()
        out = folder / "run"
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                               "avssl", "pretrain", "--config", "avts-tiny", "--data", "never-read.csv", "--out",
                               str(out)], capture_output=True, text=True, timeout=120, cwd="/")
        if "Operation not permitted" in proc.stderr and "setpriv" in proc.stderr:
            pytest.skip(f"cannot switch user here: {proc.stderr.strip()[:200]}")
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"--out {out}: cannot write" in proc.stderr and "Permission denied" in proc.stderr, proc.stderr
    finally:
        shutil.rmtree(folder)


def test_disk_full_during_a_checkpoint_write_exits_1_keeping_the_last_one(tmp_path, manifest, monkeypatch, caplog):
    real, calls = checkpoint_io.atomic_torch_save, []

    def full_disk(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_io, "atomic_torch_save", full_disk)
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        code = main(["pretrain", "--config", _config(tmp_path, max_steps=3, checkpoint_every_n_steps=1),
                     "--data", str(manifest), "--out", str(run_dir)])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    assert str(run_dir / "checkpoints" / "last.ckpt") in errors[0]
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 1, "the last good checkpoint is kept"


def test_a_read_only_metrics_file_exits_1_naming_it(tmp_path, manifest, monkeypatch, caplog):
    def read_only(path, *args, **kwargs):
        if "metrics.csv" in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(csv_logger, "open", read_only, raising=False)
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        code = main(["pretrain", "--config", _config(tmp_path, max_steps=2), "--data", str(manifest),
                     "--out", str(run_dir)])
    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Read-only file system" in errors[0] and "metrics.csv" in errors[0], errors

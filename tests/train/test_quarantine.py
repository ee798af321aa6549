"""A file that fails to decode is quarantined: not opened again from the next epoch on, in any loader
worker and after a resume (bad_files.csv is the record); data.max_failures counts distinct files;
and the samples stay those of an uninterrupted run."""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import signal

import lightning as L
import pytest
import yaml
from train_support import TINY, losses, write_videos

from avssl.cli import main
from avssl.data.probing import build_manifest, probe_paths
from avssl.methods.configs import load_config
from avssl.train.engine import pretrain
from avssl.train.signals import RunStopped

BAD = (3, 6, 9, 12)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, videos):
    """16 files probed while intact, then 4 of them overwritten (damaged after probing)."""
    folder = tmp_path_factory.mktemp("damaged")
    paths = [str(shutil.copy(p, folder)) for p in videos] + write_videos(folder / "more", 8, seed=3)
    manifest = folder / "train.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    for i in BAD:
        with open(paths[i], "r+b") as f:
            f.write(b"\0" * 4096)  # header gone: not a media file any more
    return manifest, sorted(paths[i] for i in BAD)


def _args(tmp_path, manifest, run_dir, **data):
    # 16 files, batch 4: 4 steps an epoch, 12 steps are 3 epochs
    config = {**TINY, "data": {**TINY["data"], "max_failures": 4, **data}, "trainer": {**TINY["trainer"],
                                                                                       "max_steps": 12}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["pretrain", "--config", str(path), "--data", str(manifest), "--out", str(run_dir)]


def _training_rows(run_dir):
    with open(run_dir / "bad_files.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["step"]]


@pytest.fixture(scope="module")
def uninterrupted_with_workers(tmp_path_factory, damaged):
    tmp_path = tmp_path_factory.mktemp("quarantine")
    run_dir = tmp_path / "run"
    assert main(_args(tmp_path, damaged[0], run_dir, num_workers=2)) == 0
    return run_dir


def test_a_failed_file_is_not_opened_in_later_epochs(uninterrupted_with_workers, damaged):
    rows = _training_rows(uninterrupted_with_workers)
    assert sorted({r["path"] for r in rows}) == damaged[1]
    assert {r["epoch"] for r in rows} == {"0"}, "each bad file fails in the first epoch only"
    with open(uninterrupted_with_workers / "metrics.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["data/failed_files"]) == 4 and float(last["data/failures"]) == len(rows)


def test_max_failures_counts_files_and_the_message_tells_failures_apart(tmp_path, damaged, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(_args(tmp_path, damaged[0], tmp_path / "run", max_failures=3))
    assert code == 1
    assert re.search(r"4 files failed to decode \(\d+ failures\), more than data.max_failures=3", caplog.text)


class StopAtStep(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_quarantine_survives_a_resume_and_the_losses_match(tmp_path, damaged, uninterrupted_with_workers):
    run_dir = tmp_path / "run"
    args = _args(tmp_path, damaged[0], run_dir)
    with pytest.raises(RunStopped):  # stopped in the middle of epoch 1, without loader workers
        pretrain(load_config(args[2]), damaged[0], run_dir, callbacks=[StopAtStep(6)])
    assert main([*args, "data.num_workers=2"]) == 0  # resumes to step 12 with workers
    assert {r["epoch"] for r in _training_rows(run_dir)} == {"0"}
    expected, got = losses(uninterrupted_with_workers / "metrics.csv"), losses(run_dir / "metrics.csv")
    assert sorted(got) == list(range(12))
    for step in range(12):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step

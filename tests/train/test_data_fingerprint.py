"""A resume checks the training table against the fingerprint in the checkpoint: other data of the
same length or of another length exits 2 naming --data; --allow-data-change continues (with a
warning) at the epoch's batch count in the new table's order."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import yaml
from train_support import TINY, write_videos

from avssl.cli import main
from avssl.data.dataset import FileTable
from avssl.data.manifest import Manifest
from avssl.data.probing import build_manifest, probe_paths
from avssl.data.sampling import ResumableDistributedSampler
from avssl.train.checkpoint_io import safe_load
from avssl.train.resume import table_fingerprint


def _table(paths, durations, groups) -> FileTable:
    return FileTable(np.array(paths), np.array(durations, dtype=np.float64), np.ones(len(paths), dtype=bool),
                     np.array(groups, dtype=np.int64))


def test_fingerprint_changes_with_paths_order_durations_and_groups():
    base = _table(["a.mp4", "b.mp4"], [3.0, 4.0], [0, 1])
    same = _table(["a.mp4", "b.mp4"], [3.0, 4.0], [0, 1])
    assert table_fingerprint(base) == table_fingerprint(same)
    for other in (_table(["b.mp4", "a.mp4"], [4.0, 3.0], [1, 0]), _table(["a.mp4", "c.mp4"], [3.0, 4.0], [0, 1]),
                  _table(["a.mp4", "b.mp4"], [3.0, 4.5], [0, 1]), _table(["a.mp4", "b.mp4"], [3.0, 4.0], [0, 0])):
        assert table_fingerprint(other) != table_fingerprint(base)


@pytest.fixture()
def run_dir(tmp_path, uninterrupted):
    """A copy of the finished 6-step run, at its step-3 checkpoint (mid-epoch 1: 8 files, batch 4)."""
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    (run / "checkpoints" / "last.ckpt").unlink()  # resume from last.prev.ckpt (step 3)
    return run


def _args(tmp_path, manifest, run_dir, *extra):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY))
    return ["pretrain", "--config", str(config), "--data", str(manifest), "--out", str(run_dir), *extra]


def test_other_data_of_the_same_length_exits_2_naming_data(tmp_path, manifest, run_dir, capsys):
    rows = Manifest.load(manifest)
    reordered = tmp_path / "reordered.csv"
    rows.take(np.array([1, 0, *range(2, len(rows))])).save(reordered)
    assert main(_args(tmp_path, reordered, run_dir)) == 2
    err = capsys.readouterr().err
    assert "--data" in err and str(reordered) in err and "--allow-data-change" in err, err


def test_other_data_of_another_length_exits_2(tmp_path, manifest, run_dir, capsys):
    shorter = tmp_path / "shorter.csv"
    Manifest.load(manifest).take(np.arange(6)).save(shorter)
    assert main(_args(tmp_path, shorter, run_dir)) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "6 usable rows" in err, err


def test_allow_data_change_continues_the_epoch_in_the_new_order(tmp_path, manifest, videos, run_dir, monkeypatch,
                                                                caplog):
    extra = write_videos(tmp_path / "more", 4, seed=7)
    paths = [*videos, *extra]
    bigger = tmp_path / "bigger.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(bigger)
    monkeypatch.setenv("AVSSL_RECORD_KEYS", str(tmp_path / "keys"))
    with caplog.at_level(logging.WARNING):
        assert main(_args(tmp_path, bigger, run_dir, "--allow-data-change")) == 0
    assert any("--allow-data-change" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6
    rows = [tuple(map(int, line.split(","))) for line in (tmp_path / "keys" / "keys-rank0.csv").read_text().split()]
    # epoch 1 had 1 of its batches done: the rest of epoch 1 in the 12-file order, then epoch 2
    order = ResumableDistributedSampler(12, num_replicas=1, rank=0, seed=0)
    expected = [(1, int(i)) for i in order.rank_indices(epoch=1)[4:12]] + [(2, int(i)) for i in
                                                                            order.rank_indices(epoch=2)[:4]]
    assert [(epoch, index) for _, index, epoch, _ in rows] == expected


def test_allow_data_change_onto_a_table_shorter_than_the_epochs_progress(tmp_path, manifest, run_dir):
    # 1 of 2 batches of epoch 1 done; 5 files at batch 4 make 1 batch an epoch: the next epoch starts
    shorter = tmp_path / "shorter.csv"
    Manifest.load(manifest).take(np.arange(5)).save(shorter)
    assert main(_args(tmp_path, shorter, run_dir, "--allow-data-change")) == 0
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6

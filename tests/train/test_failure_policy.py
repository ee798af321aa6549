"""A file that fails to decode is replaced, counted and listed in bad_files.csv; past
data.max_failures or under --strict the run stops with exit 1; a bad config key exits 2."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml
from train_support import TINY

from avssl.cli import main
from avssl.data.probing import build_manifest, probe_paths


@pytest.fixture(scope="module")
def corrupt_manifest(tmp_path_factory, videos):
    """The 8 videos, probed while intact; then the 4th is overwritten (a file damaged after probing)."""
    folder = tmp_path_factory.mktemp("corrupt")
    paths = []
    for path in videos:
        paths.append(str(shutil.copy(path, folder)))
    manifest = folder / "train.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    with open(paths[3], "r+b") as f:
        f.seek(0)
        f.write(b"\0" * 4096)  # header gone: not a media file any more
    return manifest, paths[3]


def _config(tmp_path, **trainer):
    config = {**TINY, "trainer": {**TINY["trainer"], **trainer}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_bad_file_is_skipped_and_reported(tmp_path, corrupt_manifest):
    manifest, bad = corrupt_manifest
    run_dir = tmp_path / "run"
    # 2 steps of 4 = one epoch over the 8 files: the bad one is drawn once
    code = main(["pretrain", "--config", _config(tmp_path, max_steps=2), "--data", str(manifest),
                 "--out", str(run_dir)])
    assert code == 0
    with open(run_dir / "bad_files.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == [bad]
    assert rows[0]["reason"] and int(rows[0]["step"]) in (0, 1)
    with open(run_dir / "metrics.csv", newline="") as f:
        assert float(list(csv.DictReader(f))[-1]["data/failures"]) == 1


def test_more_failures_than_allowed_stops_with_exit_1(tmp_path, corrupt_manifest, caplog):
    manifest, bad = corrupt_manifest
    code = main(["pretrain", "--config", _config(tmp_path, max_steps=2), "--data", str(manifest),
                 "--out", str(tmp_path / "run"), "data.max_failures=0"])
    assert code == 1
    assert "data.max_failures=0" in caplog.text and bad in caplog.text


@pytest.mark.parametrize("workers", [0, 2])
def test_strict_stops_on_the_first_bad_file(tmp_path, corrupt_manifest, caplog, workers):
    manifest, bad = corrupt_manifest
    code = main(["pretrain", "--config", _config(tmp_path, max_steps=2), "--data", str(manifest),
                 "--out", str(tmp_path / "run"), "--strict", f"data.num_workers={workers}"])
    assert code == 1
    assert bad in caplog.text and "strict" in caplog.text
    # from a loader worker too: the file's one-line reason, not a native crash or the worker's traceback
    assert "stopped on a bad file" in caplog.text
    assert "native code" not in caplog.text and "Original Traceback" not in caplog.text


def test_bad_config_key_exits_2_naming_it(tmp_path, manifest, capsys):
    code = main(["pretrain", "--config", _config(tmp_path), "--data", str(manifest),
                 "--out", str(tmp_path / "run"), "trainer.max_stepz=5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "trainer.max_stepz" in err and "trainer.max_steps" in err
    assert not (tmp_path / "run").exists(), "nothing is written for a bad config"


def test_resume_with_a_changed_config_exits_2_naming_the_key(tmp_path, manifest, uninterrupted, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted, run_dir)
    code = main(["pretrain", "--config", _config(tmp_path), "--data", str(manifest), "--out", str(run_dir),
                 "optim.lr=0.1", "trainer.max_steps=8"])
    assert code == 2
    assert "optim.lr" in capsys.readouterr().err


def test_unknown_bundled_config_exits_2(tmp_path, manifest, capsys):
    code = main(["pretrain", "--config", "no-such-config", "--data", str(manifest), "--out", str(tmp_path)])
    assert code == 2
    assert "no-such-config" in capsys.readouterr().err

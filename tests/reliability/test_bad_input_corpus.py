"""Each file of the bad-input corpus: `avssl probe` gives its specific reason; `avssl pretrain` leaves
it out or skips it (listed in bad_files.csv) and stops with exit 1 under --strict."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from corpus import CASES, UNREADABLE, error_kind, write_config, write_corpus

from avssl.cli import main
from avssl.data.manifest import Manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def probed(corpus, tmp_path_factory) -> tuple[Path, str]:
    """`avssl probe` over the corpus folder (2 workers, 10 s timeout): the manifest and stdout."""
    out = tmp_path_factory.mktemp("probed") / "corpus.csv"
    root = os.path.dirname(corpus["good.mp4"])
    proc = subprocess.run([sys.executable, "-m", "avssl", "probe", root, "--out", str(out), "--workers", "2",
                           "--timeout", "10", "--no-progress"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


def _rows(manifest: Path) -> dict[str, object]:
    m = Manifest.load(manifest)
    return {os.path.basename(row.path): row for row in m}


@pytest.mark.parametrize("name", list(CASES))
def test_probe_gives_each_file_its_reason(probed, name):
    row = _rows(probed[0])[name]
    case = CASES[name]
    assert error_kind(row.error) == case.kind, row.error
    if not case.kind:
        assert row.duration > 0


def test_probe_fills_the_streams_of_odd_but_valid_files(probed):
    rows = _rows(probed[0])
    assert (rows["no_audio.mp4"].has_video, rows["no_audio.mp4"].has_audio) == (True, False)
    assert (rows["audio_only.m4a"].has_video, rows["audio_only.m4a"].has_audio) == (False, True)
    assert rows["one_frame.mp4"].num_frames == 1
    assert rows["short_audio.mp4"].duration == pytest.approx(1.0, abs=0.05)  # the span both streams cover


def test_probe_summary_counts_each_reason(probed):
    manifest, stdout = probed
    bad = [c for c in CASES.values() if c.kind]
    assert f"files: {len(CASES)}" in stdout and f"unreadable: {len(bad)}" in stdout
    for kind in {c.kind for c in bad}:
        assert kind in stdout


def test_broken_timestamps_are_reported(probed):
    assert "timestamps go backwards" in _rows(probed[0])["bad_pts.mkv"].error


# the child imports avssl first and only then becomes `nobody`: the checkout may live where that user
# cannot read (a home folder), and what this checks is the probe's reason, not who can import avssl
_AS_NOBODY = """
import os, sys
from avssl.data.file_checks import probe_file
from avssl.media import probe
import avssl.media.pyav_backend  # imported lazily by probe: load it while the files are readable
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
print(probe_file(sys.argv[1], probe)['error'])
"""


def test_unreadable_file_is_permission_denied_for_an_unprivileged_user():
    # root reads any file: probe as `nobody` (uid 65534), in a folder that user may search
    folder = Path(tempfile.mkdtemp(prefix="avssl-locked-"))
    try:
        folder.chmod(0o755)
        locked = folder / UNREADABLE.name
        shutil.copy(Path(REPO) / "tests" / "reliability" / "corpus.py", locked)  # any bytes: never read
        locked.chmod(0)
        proc = subprocess.run([sys.executable, "-c", _AS_NOBODY, str(locked)], capture_output=True, text=True,
                              timeout=60, cwd="/")
        if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
            pytest.skip(f"cannot switch user here: {proc.stderr.strip()[-200:]}")
        assert proc.returncode == 0, proc.stderr[-1000:]
        assert error_kind(proc.stdout.strip()) == UNREADABLE.kind, proc.stdout
    finally:
        shutil.rmtree(folder)


def _without(manifest_path: Path, name: str, out: Path) -> Path:
    manifest = Manifest.load(manifest_path)
    manifest.take([i for i, row in enumerate(manifest) if os.path.basename(row.path) != name]).save(out)
    return out


def test_pretrain_leaves_out_bad_rows_and_lists_them(probed, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="avssl.train.table")
    run_dir = tmp_path / "run"
    data = _without(probed[0], "one_frame.mp4", tmp_path / "data.csv")
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(data),
                 "--out", str(run_dir)])
    assert code == 0
    with open(run_dir / "bad_files.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(r["step"] == "" for r in rows), "listed before training"
    listed = {os.path.basename(r["path"]): error_kind(r["reason"]) for r in rows}
    assert listed == {n: c.kind for n, c in CASES.items() if c.kind}
    assert "2 without video or audio" in caplog.text  # no_audio.mp4, audio_only.m4a
    assert (run_dir / "checkpoints" / "last.ckpt").exists()


def test_pretrain_skips_a_file_shorter_than_the_clip(probed, tmp_path):
    run_dir = tmp_path / "run"
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(probed[0]),
                 "--out", str(run_dir), "trainer.max_steps=3"])
    assert code == 0
    assert "one_frame.mp4" in (run_dir / "bad_files.csv").read_text()


def test_pretrain_strict_stops_on_the_manifests_bad_rows(probed, tmp_path, caplog):
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(probed[0]),
                 "--out", str(tmp_path / "run"), "--strict"])
    assert code == 1
    assert "strict" in caplog.text and "zero.mp4: zero-byte file" in caplog.text
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()

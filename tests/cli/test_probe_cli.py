"""`avssl probe` end to end: a folder mixing good and bad files, datasets, and bad usage (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from avssl.cli import main
from avssl.data.manifest import Manifest
from avssl.media.writer import write_media

FPS, RATE = 25, 16000


def _frames(seconds):
    return np.full((int(seconds * FPS), 48, 64, 3), 90, np.uint8)


def _audio(seconds, rate=RATE):
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """good: av.mp4 (video + audio), speech.wav (audio only), silent.mp4 (video only); three bad files."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "cats").mkdir()
    (root / "dogs").mkdir()
    write_media(root / "cats" / "av.mp4", _frames(2.0), FPS, _audio(2.0), RATE)
    write_media(root / "dogs" / "speech.wav", None, FPS, _audio(1.5, 22050), 22050)
    write_media(root / "dogs" / "silent.mp4", _frames(1.2), FPS)
    (root / "dogs" / "empty.mp4").write_bytes(b"")
    data = (root / "cats" / "av.mp4").read_bytes()
    (root / "cats" / "cut.mp4").write_bytes(data[: len(data) // 2])
    (root / "cats" / "notes.mp4").write_text("shopping list: milk, eggs\n")
    return root


EXPECTED = {  # name -> (has_video, has_audio, error kind)
    "av.mp4": (True, True, ""), "speech.wav": (False, True, ""), "silent.mp4": (True, False, ""),
    "empty.mp4": (False, False, "zero-byte file"), "cut.mp4": (False, False, "truncated"),
    "notes.mp4": (False, False, "not a media file"),
}


def _ffprobe_duration(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", path],
                         check=True, capture_output=True, text=True).stdout
    return float(json.loads(out)["format"]["duration"])


def _check_manifest(manifest):
    assert len(manifest) == len(EXPECTED)
    for row in manifest:
        has_video, has_audio, kind = EXPECTED[os.path.basename(row.path)]
        assert (row.has_video, row.has_audio) == (has_video, has_audio), row.path
        assert row.error.split(": ", 1)[0] == kind, row.error
        assert row.label == os.path.basename(os.path.dirname(row.path))


def test_probe_mixed_folder_in_process(mixed, tmp_path, capsys):
    out = tmp_path / "manifest.csv"
    code = main(["probe", str(mixed), "--out", str(out), "--labels-from-dirs", "--workers", "2", "--no-progress"])
    assert code == 0
    manifest = Manifest.load(out)
    _check_manifest(manifest)
    rows = {os.path.basename(r.path): r for r in manifest}
    assert rows["av.mp4"].duration == pytest.approx(2.0, abs=0.05)
    assert (rows["av.mp4"].width, rows["av.mp4"].height, rows["av.mp4"].num_frames) == (64, 48, 50)
    assert rows["speech.wav"].audio_sample_rate == 22050 and rows["speech.wav"].duration == pytest.approx(1.5, abs=1e-3)
    assert rows["silent.mp4"].video_fps == pytest.approx(25.0) and rows["silent.mp4"].num_frames == 30
    printed = capsys.readouterr().out
    assert "files: 6  readable: 3" in printed and "with audio: 2  without audio: 1" in printed
    assert "truncated" in printed and "zero-byte file" in printed and "not a media file" in printed


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed (Debian package ffmpeg)")
def test_probe_durations_match_ffprobe(mixed, tmp_path):
    out = tmp_path / "manifest.parquet"
    assert main(["probe", str(mixed), "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    for row in Manifest.load(out).filter("any"):
        assert row.duration == pytest.approx(_ffprobe_duration(row.path), abs=0.05), row.path


@pytest.mark.slow  # a fresh interpreter plus a fresh fork server: 5-13 s depending on load
def test_probe_through_the_installed_entry_point(mixed, tmp_path):
    exe = shutil.which("avssl", path=os.path.dirname(sys.executable)) or shutil.which("avssl")
    assert exe, "the avssl console script is not installed"
    out = tmp_path / "m.csv"
    result = subprocess.run([exe, "probe", str(mixed / "cats"), str(mixed / "dogs" / "speech.wav"),
                             "--out", str(out), "--labels-from-dirs", "--timeout", "20"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    manifest = Manifest.load(out)
    assert [os.path.basename(r.path) for r in manifest] == ["av.mp4", "cut.mp4", "notes.mp4", "speech.wav"]
    assert "files: 4  readable: 2" in result.stdout


def test_probe_with_a_dataset_fills_label_split_group(mixed, tmp_path):
    root = tmp_path / "ESC-50"
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    shutil.copy(mixed / "dogs" / "speech.wav", root / "audio" / "1-100032-A-0.wav")
    (root / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n"
                                             "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
                                             "3-1234-A-0.wav,3,0,dog,True,1234,A\n")
    out = tmp_path / "esc.csv"
    assert main(["probe", str(root), "--dataset", "esc50", "--out", str(out), "--workers", "0", "--no-progress"]) == 0
    first, missing = Manifest.load(out)
    assert (first.label, first.split, first.group, first.error, first.has_audio) == ("dog", "1", "100032", "", True)
    assert (missing.split, missing.error) == ("3", "file not found: no such file")


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "ucf-101", "--split", "1"], "unknown dataset 'ucf-101'"),
    (["--dataset", "ucf101"], "ucf101 needs --split N"),
    (["--split", "1"], "--split needs --dataset"),
    (["--workers", "-1"], "--workers must be >= 0"),
    (["--timeout", "0"], "--timeout must be a positive number"),
])
def test_bad_usage_exits_2_naming_the_problem(mixed, tmp_path, capsys, argv, message):
    code = main(["probe", str(mixed), "--out", str(tmp_path / "m.csv"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_missing_path_and_bad_output_name_exit_2(mixed, tmp_path, capsys):
    assert main(["probe", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.csv")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such file or folder" in capsys.readouterr().err
    assert main(["probe", str(mixed), "--out", str(tmp_path / "m.txt")]) == 2
    assert "m.txt: a manifest must end in .csv or .parquet" in capsys.readouterr().err


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["probe", "--help"])
    assert exit_info.value.code == 0
    assert "avssl probe /data/UCF101 --dataset ucf101 --split 1" in capsys.readouterr().out

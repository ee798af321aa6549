"""Probing files for the manifest: discovery order, a specific reason per bad file, pool timeout and crash."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from broken_media import without_moov

from avssl.data.discovery import discover_media
from avssl.data.file_checks import FAILURE_KINDS, probe_file
from avssl.data.probing import build_manifest, probe_paths
from avssl.errors import UsageError
from avssl.media import MediaInfo
from avssl.media import probe as media_probe
from avssl.media.checks import MAX_SIDE
from avssl.media.writer import write_media


def _write_av(path, seconds=1.0, audio=True, video=True):
    frames = np.zeros((int(25 * seconds), 32, 48, 3), np.uint8) if video else None
    samples = (0.2 * np.sin(np.arange(int(16000 * seconds)) * 0.05)).astype(np.float32) if audio else None
    return write_media(path, frames, 25, samples, 16000)


def _kind(row):
    return row["error"].split(": ", 1)[0]


# probe functions the pool workers import by name ------------------------------------------------
def hanging_probe(path):
    if "hang" in os.path.basename(path):
        time.sleep(600)
    return media_probe(path)


def crashing_probe(path):
    if "crash" in os.path.basename(path):
        os.kill(os.getpid(), signal.SIGSEGV)
    return media_probe(path)


def buggy_probe(path):
    if "bug" in os.path.basename(path):
        raise TypeError("unsupported operand")
    return media_probe(path)


def huge_probe(path):
    return MediaInfo(path=path, duration=2.0, has_video=True, has_audio=False, video_fps=25.0,
                     width=MAX_SIDE * 4, height=MAX_SIDE * 2, num_frames=50)


def silent_probe(path):
    return MediaInfo(path=path, duration=2.0, has_video=False, has_audio=False)


# discovery --------------------------------------------------------------------------------------
def test_discovery_walks_folders_sorted_and_keeps_named_files(tmp_path):
    for rel in ["b/z.MP4", "b/a.wav", "a/x.webm", "a/notes.txt", "a/deep/er/y.flac", "c.mkv"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "a" / "frames.avi").mkdir()  # a folder named like a video is listed for the probe to report
    (tmp_path / "odd.bin").write_bytes(b"")
    found = discover_media([tmp_path / "b", tmp_path / "a", tmp_path / "odd.bin", tmp_path / "c.mkv", tmp_path / "b"])
    rel = [os.path.relpath(p, tmp_path) for p in found]
    assert rel == ["a/deep/er/y.flac", "a/frames.avi", "a/x.webm", "b/a.wav", "b/z.MP4", "c.mkv", "odd.bin"]
    with pytest.raises(UsageError, match="missing_dir: no such file or folder"):
        discover_media([tmp_path / "missing_dir"])
    # a folder given as a link is walked; a linked folder met inside a walk is not followed
    (tmp_path / "linked_b").symlink_to(tmp_path / "b", target_is_directory=True)
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a", target_is_directory=True)
    rel = [os.path.relpath(p, tmp_path) for p in discover_media([tmp_path / "linked_b", tmp_path / "a"])]
    assert rel == ["a/deep/er/y.flac", "a/frames.avi", "a/x.webm", "linked_b/a.wav", "linked_b/z.MP4"]


# one reason per bad input -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    good = _write_av(root / "good clip é.mp4")
    data = open(good, "rb").read()
    (root / "half.mp4").write_bytes(data[: len(data) // 2])
    (root / "no_moov.mp4").write_bytes(without_moov(Path(good).read_bytes()))
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("<html><body>404 Not Found</body></html>\n")
    (root / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (root / "folder.mp4").mkdir()
    os.mkfifo(root / "pipe.mp4")
    os.symlink("loop_b.mp4", root / "loop_a.mp4")
    os.symlink("loop_a.mp4", root / "loop_b.mp4")
    os.symlink("gone.mp4", root / "dangling.mp4")
    return root


@pytest.mark.parametrize("name, kind, detail", [
    ("zero.mp4", "zero-byte file", "empty"),
    ("text.mp4", "not a media file", "<html>"),
    ("random.mp4", "cannot open", ""),
    ("half.mp4", "truncated", "box 'mdat'"),
    ("no_moov.mp4", "truncated", "no 'moov' box"),
    ("folder.mp4", "is a directory", ""),
    ("pipe.mp4", "not a regular file", "FIFO"),
    ("loop_a.mp4", "symlink loop", ""),
    ("dangling.mp4", "broken symlink", "gone.mp4"),
    ("absent.mp4", "file not found", ""),
])
def test_each_bad_input_gets_its_specific_reason(corpus, name, kind, detail):
    row = probe_file(str(corpus / name), media_probe)
    assert _kind(row) == kind and kind in FAILURE_KINDS
    assert detail in row["error"]


def test_good_file_with_spaces_and_non_ascii_name_probes_clean(corpus):
    row = probe_file(str(corpus / "good clip é.mp4"), media_probe)
    assert row["error"] == "" and row["has_video"] and row["has_audio"]
    assert (row["width"], row["height"], row["num_frames"], row["audio_sample_rate"]) == (48, 32, 25, 16000)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_permission_denied(tmp_path):
    path = _write_av(tmp_path / "locked.wav", video=False)
    os.chmod(path, 0)
    assert _kind(probe_file(path, media_probe)) == "permission denied"


def test_implausible_size_and_no_streams_are_reported(corpus):
    good = str(corpus / "good clip é.mp4")
    assert probe_file(good, huge_probe)["error"] == f"implausible size: {MAX_SIDE * 4}x{MAX_SIDE * 2}"
    assert probe_file(good, silent_probe)["error"] == "no streams: no audio or video stream"


# the pool ---------------------------------------------------------------------------------------
def test_pool_matches_in_process_probe_and_keeps_order(corpus):
    names = sorted(n for n in os.listdir(corpus) if n != "pipe.mp4")
    paths = [str(corpus / n) for n in names]
    pooled = build_manifest(paths, probe_paths(paths, workers=2, progress=False))
    in_process = build_manifest(paths, probe_paths(paths, workers=0, progress=False))
    assert pooled == in_process  # Manifest equality treats the NaN durations of bad rows as equal
    assert [r.path for r in pooled] == paths and pooled.summary().readable == 1


def test_a_hanging_file_times_out_and_the_pool_goes_on(corpus, tmp_path):
    hang = tmp_path / "hang.wav"
    os.symlink(corpus / "good clip é.mp4", hang)
    paths = [str(hang), str(corpus / "good clip é.mp4"), str(corpus / "zero.mp4")]
    start = time.monotonic()
    rows = probe_paths(paths, workers=1, timeout=1.0, progress=False, probe=hanging_probe)
    assert time.monotonic() - start < 30
    assert [r["error"] for r in rows][0] == "timeout: after 1 s"
    assert rows[1]["error"] == "" and rows[1]["has_audio"]
    assert _kind(rows[2]) == "zero-byte file"


def test_a_crashing_worker_is_reported_and_replaced(corpus, tmp_path):
    crash = tmp_path / "crash.mp4"
    os.symlink(corpus / "good clip é.mp4", crash)
    paths = [str(crash), str(corpus / "good clip é.mp4")]
    rows = probe_paths(paths, workers=1, progress=False, probe=crashing_probe)
    assert rows[0]["error"] == f"worker crashed: exit code {-signal.SIGSEGV}"
    assert rows[1]["error"] == "" and rows[1]["has_video"]


def test_a_bug_in_the_probe_becomes_an_internal_error_row(corpus, tmp_path):
    bug = tmp_path / "bug.mp4"
    os.symlink(corpus / "good clip é.mp4", bug)
    paths = [str(bug), str(corpus / "good clip é.mp4")]
    rows = probe_paths(paths, workers=1, progress=False, probe=buggy_probe)
    assert rows[0]["error"] == "internal error: TypeError: unsupported operand"
    assert rows[1]["error"] == ""


def test_odd_but_valid_files_probe_clean(tmp_path):
    one_frame = write_media(tmp_path / "one frame.mp4", np.zeros((1, 32, 32, 3), np.uint8), 25)
    short_audio = write_media(tmp_path / "short audio.mp4", np.zeros((50, 32, 32, 3), np.uint8), 25,
                              np.zeros(8000, np.float32), 16000)
    row = probe_file(one_frame, media_probe)
    assert (row["error"], row["num_frames"], row["has_audio"]) == ("", 1, False)
    row = probe_file(short_audio, media_probe)
    assert row["error"] == "" and row["has_audio"] and row["num_frames"] == 50
    # the span both streams cover: the 0.5 s of audio, not the 2 s of video (no window promises absent audio)
    assert row["duration"] == pytest.approx(0.5, abs=0.05)

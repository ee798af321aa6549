"""A corpus of bad inputs written by the tests themselves (no committed binaries), with the reason
`avssl probe` must give for each and a tiny training config for running `avssl pretrain` on it."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from broken_media import without_moov

from avssl.media.writer import write_media

RATE = 16000
FPS = 25


@dataclass(frozen=True)
class Case:
    """One corpus file: `kind` is the probe's failure kind ("" = probes clean); `trains` says
    whether `avssl pretrain` keeps the row (it needs video and audio, and no probe error)."""

    name: str
    kind: str
    trains: bool
    what: str


# name -> case, in the order of the docs table
CASES = {c.name: c for c in [
    Case("good.mp4", "", True, "a good file"),
    Case("good clip é ü.mp4", "", True, "a path with spaces and non-ASCII characters"),
    Case("zero.mp4", "zero-byte file", False, "zero-byte file"),
    Case("random.mp4", "cannot open", False, "random bytes named .mp4"),
    Case("no_moov.mp4", "truncated", False, "truncated mp4 (moov box missing)"),
    Case("short_audio.mp4", "", True, "mp4 whose audio is shorter than its video"),
    Case("no_audio.mp4", "", False, "video with no audio stream"),
    Case("audio_only.m4a", "", False, "audio with no video stream"),
    Case("one_frame.mp4", "", True, "a 1-frame video (with 40 ms of audio)"),
    Case("bad_pts.mkv", "decode error", False,
         "broken timestamps: 10 frames stamped 600 ms back (non-monotonic pts)"),
    Case("huge.avi", "implausible size", False, "a real frame of 16400 x 16 pixels"),
    Case("huge_header.avi", "decode error", False, "JPEG frames whose header declares 40000 x 30000"),
    Case("folder.mp4", "is a directory", False, "a folder named like a video"),
    Case("loop.mp4", "symlink loop", False, "a symlink loop"),
]}
UNREADABLE = Case("locked.mp4", "permission denied", False, "a file without read permission")


def _frames(count: int, height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, 256, (1, height // 8, width // 8, 3), dtype=np.uint8), count, axis=0)
    frames = np.kron(frames, np.ones((1, 8, 8, 1), dtype=np.uint8))
    return ((frames.astype(np.int16) + np.arange(count)[:, None, None, None] * 3) % 256).astype(np.uint8)


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32)


def write_good(path: Path, seconds: float = 3.0, seed: int = 0) -> str:
    return write_media(str(path), _frames(int(seconds * FPS), seed=seed), FPS, _audio(seconds, seed), RATE)


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length integer at `pos`: (value, length in bytes)."""
    first, length = data[pos], 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    return value, length


def _children(data: bytes, start: int, end: int):
    pos = start
    while pos < end:
        element, n = _vint(data, pos, keep_marker=True)
        size, m = _vint(data, pos + n, keep_marker=False)
        body = pos + n + m
        if size == (1 << (7 * m)) - 1:  # "unknown size": runs to the end of the parent
            size = end - body
        yield element, body, min(body + size, end)
        pos = body + size


def shift_mkv_video_times(data: bytes, first: int, count: int, shift_ms: int) -> bytes:
    """Move the timestamps of video blocks first..first+count-1 of a Matroska file by `shift_ms`.

    Edits the 16-bit cluster-relative time of each SimpleBlock of track 1 (the muxer refuses to
    write non-monotonic timestamps itself, so the bytes are edited after writing).
    """
    out = bytearray(data)
    offsets = []
    for segment, s_body, s_end in _children(out, 0, len(out)):
        if segment != 0x18538067:  # Segment
            continue
        for cluster, c_body, c_end in _children(out, s_body, s_end):
            if cluster != 0x1F43B675:  # Cluster
                continue
            for block, b_body, _ in _children(out, c_body, c_end):
                track, n = _vint(out, b_body, keep_marker=False)
                if block == 0xA3 and track == 1:  # SimpleBlock of the video track
                    offsets.append(b_body + n)
    assert len(offsets) >= first + count, f"only {len(offsets)} video blocks"
    for offset in offsets[first:first + count]:
        (time,) = struct.unpack(">h", out[offset:offset + 2])
        out[offset:offset + 2] = struct.pack(">h", time + shift_ms)
    return bytes(out)


def declare_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """An MJPEG AVI whose headers (avih, strf and every JPEG SOF0) declare width x height."""
    out = bytearray(data)
    avih = out.index(b"avih") + 8
    out[avih + 32:avih + 40] = struct.pack("<II", width, height)
    strf = out.index(b"strf", out.index(b"vids")) + 8
    out[strf + 4:strf + 12] = struct.pack("<ii", width, height)
    pos = out.find(b"\xff\xc0")
    while pos >= 0:
        out[pos + 5:pos + 9] = struct.pack(">HH", height, width)
        pos = out.find(b"\xff\xc0", pos + 1)
    return bytes(out)


def write_corpus(root: Path) -> dict[str, str]:
    """Write every case of CASES under `root`; returns name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    good = write_good(root / "good.mp4", seed=1)
    write_good(root / "good clip é ü.mp4", seed=2)
    (root / "zero.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    (root / "no_moov.mp4").write_bytes(without_moov(Path(good).read_bytes()))
    write_media(str(root / "short_audio.mp4"), _frames(3 * FPS, seed=3), FPS, _audio(1.0, 3), RATE)
    write_media(str(root / "no_audio.mp4"), _frames(3 * FPS, seed=4), FPS)
    write_media(str(root / "audio_only.m4a"), None, FPS, _audio(3.0, 5), RATE, fmt="mp4")
    write_media(str(root / "one_frame.mp4"), _frames(1, seed=6), FPS, _audio(1 / FPS, 6), RATE)
    mkv = write_media(str(root / "bad_pts.mkv"), _frames(3 * FPS, seed=7), FPS, _audio(3.0, 7), RATE, fmt="mkv")
    Path(mkv).write_bytes(shift_mkv_video_times(Path(mkv).read_bytes(), first=30, count=10, shift_ms=-600))
    write_media(str(root / "huge.avi"), np.zeros((2, 16, 16400, 3), np.uint8), FPS, fmt="avi")
    small = write_media(str(root / "huge_header.avi"), _frames(5, seed=8), FPS, fmt="avi")
    Path(small).write_bytes(declare_jpeg_size(Path(small).read_bytes(), 40000, 30000))
    (root / "folder.mp4").mkdir()
    os.symlink("loop.mp4", root / "loop.mp4")  # a link to itself: ELOOP
    return {name: str(root / name) for name in CASES}


def error_kind(error: str) -> str:
    """'kind: detail' -> 'kind' ('' for a usable row)."""
    return error.split(": ", 1)[0]


TINY_TRAIN = {
    "method": {"name": "avts", "min_offset": 0.5, "curriculum": {"easy_steps": 2, "ramp_steps": 0}},
    "seed": 0,
    "model": {"video": {"name": "r2plus1d_18-tiny"}, "audio": {"name": "vgg_audio-tiny"},
              "embed_dim": 16, "projection_hidden": 32},
    "data": {"batch_size": 2, "num_workers": 0, "pin_memory": False, "max_failures": 5,
             "clip": {"frames": 4, "fps": 8.0}, "video_augment": {"size": 16},
             "logmel": {"compute_dtype": "float32", "n_mels": 32}},
    "optim": {"lr": 0.003, "warmup_steps": 1},
    "trainer": {"max_steps": 2, "accelerator": "cpu", "devices": 1, "precision": "32",
                "log_every_n_steps": 1, "checkpoint_every_n_steps": 1, "progress_bar": False},
}


def write_config(path: Path, **sections) -> str:
    """TINY_TRAIN with whole-section updates (e.g. trainer={...}) written as YAML."""
    import yaml

    config = {k: ({**v, **sections.get(k, {})} if isinstance(v, dict) else sections.get(k, v))
              for k, v in TINY_TRAIN.items()}
    path.write_text(yaml.safe_dump(config))
    return str(path)

"""Decode speed: ms per clip (16 frames over a random 1 s window + that second of audio at 16 kHz).

Generates its test files once (320x240 and 1280x720, 10 s; 320x240, 30 min) under --cache-dir and
times random clips with each available backend (pyav; torchcodec when importable). The 10 s and
30 min files at 320x240 share content, so their figures show whether seeking depends on length.

Example:
  avssl bench decode --cache-dir .cache/bench-media --clips 30
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from avssl.data.synthetic.encode import write_media
from avssl.data.synthetic.framecode import beep_track, encode_frame_index
from avssl.media import BACKENDS, BackendUnavailableError, MediaReader

log = logging.getLogger(__name__)

FPS = 25
AUDIO_RATE = 44100
FILES = {  # name -> (height, width, seconds)
    "320x240_10s": (240, 320, 10),
    "1280x720_10s": (720, 1280, 10),
    "320x240_30min": (240, 320, 1800),
}


class _GeneratedFrames:
    """uint8 [T, H, W, 3] made on the fly (a 30-minute array would not fit in memory): a frame
    index code, a moving bar and a slow colour drift: cheap to encode, not trivially static."""

    dtype = np.dtype(np.uint8)

    def __init__(self, count: int, height: int, width: int):
        self.shape = (count, height, width, 3)

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        count, height, width, _ = self.shape
        for i in range(count):
            frame = encode_frame_index(i % 4096, height, width)
            x = (i * 4) % width
            frame[height // 2:, x:x + width // 10] = (40 + i % 200, 200, 90)
            yield frame


def generate(cache_dir: str, name: str) -> str:
    """Path of the named test file, written on first use."""
    height, width, seconds = FILES[name]
    path = os.path.join(cache_dir, f"bench_{name}.mp4")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        started = time.perf_counter()
        audio = beep_track(np.arange(0.25, seconds, 0.5), seconds, AUDIO_RATE)
        tmp = path + ".part.mp4"
        write_media(tmp, _GeneratedFrames(seconds * FPS, height, width), FPS, audio, AUDIO_RATE, gop=FPS * 2)
        os.replace(tmp, path)
        log.info("wrote %s in %.1f s", path, time.perf_counter() - started)
    return path


def time_clips(path: str, backend: str, clips: int, seed: int) -> dict:
    """Median and mean ms per clip over `clips` random 1 s windows, one open reader (as a worker)."""
    rng = np.random.default_rng(seed)
    times = []
    with MediaReader(path, backend=backend) as reader:
        starts = rng.uniform(0, reader.info.duration - 1.05, size=clips + 1)
        for i, start in enumerate(starts):
            t0 = time.perf_counter()
            video = reader.read_video(start, 1.0, fps=16)
            audio = reader.read_audio(start, 1.0, sample_rate=16000)
            if i:  # the first clip warms up decoders and caches
                times.append((time.perf_counter() - t0) * 1000)
            assert video.shape[0] == 16 and audio.shape[0] == 16000
    return {"ms_per_clip_median": round(float(np.median(times)), 1), "ms_per_clip_mean": round(float(np.mean(times)), 1)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=".cache/bench-media", help="where generated files are kept")
    parser.add_argument("--clips", type=int, default=30, help="random clips timed per file and backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", nargs="+", default=list(FILES), choices=list(FILES))


def run(args: argparse.Namespace) -> dict:
    result: dict = {"clip": "16 frames over 1 s + 1 s audio at 16 kHz", "results": {}}
    for name in args.files:
        path = generate(args.cache_dir, name)
        for backend in BACKENDS:
            try:
                figures = time_clips(path, backend, args.clips, args.seed)
            except BackendUnavailableError as err:
                result.setdefault("skipped", {})[backend] = err.reason
                continue
            result["results"][f"{name}/{backend}"] = figures
    return result

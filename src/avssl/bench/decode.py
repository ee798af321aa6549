"""Decode speed: ms per clip (16 frames over a random 1 s window + that second of audio at 16 kHz).

Generates its test files once (320x240 and 1280x720, 10 s; 320x240, 30 min; all h264 veryfast,
25 fps, a keyframe every second, AAC 44.1 kHz) under --cache-dir and times random clips with each
available backend (pyav; torchcodec when importable). The 10 s and 30 min files at 320x240 share
content and encoding, so their figures show whether a clip's cost depends on the file's length
(it must not: a read seeks to the keyframe before its window). The load average is recorded:
figures taken on a busy machine are not comparable with idle ones.

Example:
  avssl bench decode --cache-dir .cache/bench-media --clips 30
  avssl bench decode --files 320x240_10s 320x240_30min --clips 15
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator

import numpy as np

from avssl.data.synthetic.framecode import beep_track, encode_frame_index
from avssl.media import BACKENDS, BackendUnavailableError, MediaReader
from avssl.media.writer import write_media

log = logging.getLogger(__name__)

FPS = 25
GOP = FPS  # one keyframe a second, as typical camera and web video
AUDIO_RATE = 44100
FILES = {  # name -> (height, width, seconds)
    "320x240_10s": (240, 320, 10),
    "1280x720_10s": (720, 1280, 10),
    "320x240_30min": (240, 320, 1800),
}


def generated_frames(count: int, height: int, width: int) -> Iterator[np.ndarray]:
    """uint8 [H, W, 3] frames made one at a time (30 minutes would not fit in memory): a frame
    index code, a moving bar and a slow colour drift: cheap to encode, not trivially static."""
    for i in range(count):
        frame = encode_frame_index(i % 4096, height, width)
        x = (i * 4) % width
        frame[height // 2:, x:x + width // 10] = (40 + i % 200, 200, 90)
        yield frame


def generated_audio(seconds: int, rate: int) -> Iterator[np.ndarray]:
    """float32 [rate] chunks, one per second: beeps at 0.25 s and 0.75 s of every second."""
    second = beep_track(np.array([0.25, 0.75]), 1.0, rate)
    for _ in range(seconds):
        yield second


def generate(cache_dir: str, name: str) -> tuple[str, float]:
    """Path of the named test file, written on first use, and the seconds writing it took (0 if cached)."""
    height, width, seconds = FILES[name]
    path = os.path.join(cache_dir, f"bench_{name}_gop{GOP}.mp4")
    if os.path.exists(path):
        return path, 0.0
    os.makedirs(cache_dir, exist_ok=True)
    started = time.perf_counter()
    tmp = path + ".part.mp4"
    write_media(
        tmp, generated_frames(seconds * FPS, height, width), FPS, generated_audio(seconds, AUDIO_RATE), AUDIO_RATE,
        gop=GOP, num_frames=seconds * FPS, frame_size=(height, width),
    )
    os.replace(tmp, path)
    took = time.perf_counter() - started
    log.info("wrote %s in %.1f s", path, took)
    return path, took


def time_clips(path: str, backend: str, clips: int, seed: int) -> dict:
    """Median and mean ms per clip over `clips` random 1 s windows, one open reader (as a worker)."""
    rng = np.random.default_rng(seed)
    times = []
    with MediaReader(path, backend=backend) as reader:
        starts = rng.uniform(0, reader.info.duration - 1.05, size=clips + 1)
        decoded_before = 0
        for i, start in enumerate(starts):
            if i == 1:
                decoded_before = reader.decoded_video_frames or 0
            t0 = time.perf_counter()
            video = reader.read_video(start, 1.0, fps=16)
            audio = reader.read_audio(start, 1.0, sample_rate=16000)
            if i:  # the first clip warms up decoders and caches
                times.append((time.perf_counter() - t0) * 1000)
            if video.shape[0] != 16 or audio.shape[0] != 16000:
                raise RuntimeError(
                    f"{path}: clip at {start:.3f} s has {video.shape[0]} frames, {audio.shape[0]} samples"
                )
        decoded = reader.decoded_video_frames
    figures = {
        "ms_per_clip_median": round(float(np.median(times)), 1),
        "ms_per_clip_mean": round(float(np.mean(times)), 1),
        "ms_per_clip_min": round(float(np.min(times)), 1),
    }
    if decoded is not None:
        figures["video_frames_decoded_per_clip"] = round((decoded - decoded_before) / clips, 1)
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=".cache/bench-media", help="where generated files are kept")
    parser.add_argument("--clips", type=int, default=30, help="random clips timed per file and backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--files", nargs="+", default=list(FILES), choices=list(FILES))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))


def run(args: argparse.Namespace) -> dict:
    result: dict = {
        "clip": "16 frames over a random 1 s + 1 s audio at 16 kHz, native size",
        "files": f"h264 veryfast {FPS} fps, keyframe every {GOP} frames, AAC {AUDIO_RATE} Hz",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "results": {},
    }
    for name in args.files:
        path, took = generate(args.cache_dir, name)
        if took:
            result.setdefault("generated_s", {})[name] = round(took, 1)
        for backend in args.backends:
            try:
                figures = time_clips(path, backend, args.clips, args.seed)
            except BackendUnavailableError as err:
                result.setdefault("skipped", {})[backend] = err.reason
                continue
            result["results"][f"{name}/{backend}"] = figures
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result

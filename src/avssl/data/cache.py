"""Optional pre-decoded caches of training media: audio as a 16 kHz (or any rate) float32 waveform and
video as frames resized to a fixed short side at a fixed fps, one memory-mapped .npy per source file.

Layout: ROOT/audio-<hash>/ and ROOT/frames-<hash>/, where <hash> is a hash of everything that decides
the cached values (the CacheSpec: rate, or fps and short side, format version). Each folder holds
spec.json and one `<entry>.npy` per source file, the entry name being a hash of the file's absolute
path, size and modification time: a file that changes simply misses the cache.

Entries are made by the same reader the training path uses (MediaReader.read_audio / read_video on
the same time grid), so a cached window is the window a direct read returns:
- audio entry: float32 [M], M = round(duration * rate); sample j is the signal at time j / rate.
- frames entry: uint8 [N, H, W, 3], N = the fps grid points in [0, duration); frame j is the frame
  shown at time j / fps, resized (area) so its short side is `short_side`.
Frames are stored raw (uint8) rather than as JPEG: a cached clip is then bit-identical to a decoded
one and costs a memory copy instead of a decode; the price is disk (H * W * 3 bytes per frame, e.g.
65 KB at 128x171, 1.6 MB per second at 25 fps).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from avssl.media import AudioReadInfo, ClipOutsideStreamError, MediaError, MediaReader, VideoReadInfo
from avssl.media.timing import TIME_EPS, grid_times

log = logging.getLogger(__name__)

CACHE_VERSION = 1
# frames decoded per read when building a frames entry: bounds memory (decoded 720p frames are held
# until converted) while keeping seeks rare
FRAMES_PER_READ = 64
AUDIO_SECONDS_PER_READ = 60
AUDIO_TAIL = 0.25  # seconds cached past the stated end of the file


@dataclass(frozen=True)
class AudioCacheSpec:
    """Mono float32 waveform at `sample_rate`."""

    sample_rate: int = 16000
    kind: str = "audio"

    def describe(self) -> dict[str, Any]:
        # padding: samples the stream does not have (before its start, past its end) are stored as NaN
        return {**asdict(self), "feature": "waveform", "dtype": "float32", "version": CACHE_VERSION,
                "padding": "nan"}


@dataclass(frozen=True)
class FramesCacheSpec:
    """RGB uint8 frames at `fps`, short side `short_side` (area resampling), rotation applied."""

    fps: float = 25.0
    short_side: int = 128
    kind: str = "frames"

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "dtype": "uint8", "layout": "THWC", "interpolation": "area",
                "version": CACHE_VERSION}


CacheSpec = AudioCacheSpec | FramesCacheSpec


def spec_hash(spec: CacheSpec) -> str:
    text = json.dumps(spec.describe(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def spec_dir(root: str | os.PathLike, spec: CacheSpec) -> str:
    """ROOT/<kind>-<hash of the spec>."""
    return os.path.join(os.fspath(root), f"{spec.kind}-{spec_hash(spec)}")


def entry_name(path: str) -> str:
    """The cache file name of a source file: a hash of its absolute path, size and mtime."""
    st = os.stat(path)
    text = f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha1(text.encode()).hexdigest()[:24] + ".npy"


def _write_spec(folder: str, spec: CacheSpec) -> None:
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, "spec.json")
    if not os.path.exists(target):
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(spec.describe(), f, indent=1, sort_keys=True)
        os.replace(tmp, target)


def build_entry(path: str, folder: str, spec: CacheSpec, backend: str | None = None) -> tuple[str, bool]:
    """Write the cache entry of one source file (atomically) unless it exists; (entry path, written)."""
    _write_spec(folder, spec)
    target = os.path.join(folder, entry_name(path))
    if os.path.exists(target):
        return target, False
    tmp = f"{target[:-4]}.{os.getpid()}.part.npy"
    try:
        with MediaReader(path, backend=backend) as reader:
            if isinstance(spec, AudioCacheSpec):
                _fill_audio(reader, tmp, spec)
            else:
                _fill_frames(reader, tmp, spec)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target, True


def _fill_audio(reader: MediaReader, out_path: str, spec: AudioCacheSpec) -> None:
    rate = spec.sample_rate
    info = reader.info
    end = max(info.duration, info.audio_start + info.audio_duration)
    if end <= 0:
        raise ClipOutsideStreamError(reader.path, "file has no duration: nothing to cache")
    # the last codec frame runs past the stated duration (AAC pads to 1024 samples) and a direct
    # read returns those samples: keep AUDIO_TAIL more (zeros where nothing was decoded)
    total = math.ceil((end + AUDIO_TAIL) * rate)
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float32, shape=(total,))
    out[:] = np.nan  # what no read reaches is padding too
    step = AUDIO_SECONDS_PER_READ * rate
    for first in range(0, total, step):
        if first / rate >= end:
            break  # a read may not start past the file's end; what is left is padding
        count = min(step, total - first)
        chunk, read = reader.read_audio(first / rate, count / rate, sample_rate=rate, return_info=True)
        chunk = chunk.numpy().copy()
        chunk[:read.padded_before] = np.nan
        chunk[len(chunk) - read.padded_after:] = np.nan
        out[first:first + count] = chunk
    out.flush()
    del out


def _fill_frames(reader: MediaReader, out_path: str, spec: FramesCacheSpec) -> None:
    info = reader.info
    # the video's own span (info.duration is where both streams exist); rows past it are padding,
    # which CachedReader counts; rows before a late first frame could not be told apart: not cached
    total = len(grid_times(0.0, max(info.duration, info.video_start + info.video_duration), spec.fps))
    if info.video_start > TIME_EPS:
        raise ClipOutsideStreamError(reader.path, f"video starts at {info.video_start:.3f} s: its frames are "
                                                  "decoded on demand, so that the padding before it is counted")
    out = None
    for first in range(0, total, FRAMES_PER_READ):
        count = min(FRAMES_PER_READ, total - first)
        frames = reader.read_video(first / spec.fps, count / spec.fps, fps=spec.fps, size=spec.short_side).numpy()
        if frames.shape[0] != count:
            raise RuntimeError(f"{reader.path}: expected {count} frames from {first / spec.fps:.3f} s, got {frames.shape[0]}")
        if out is None:  # the size is known (rotation included) once a frame is decoded
            out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.uint8, shape=(total, *frames.shape[1:]))
        out[first:first + count] = frames
    if out is None:
        raise ClipOutsideStreamError(reader.path, "file has no video frame to cache")
    out.flush()
    del out


class ClipCache:
    """Where a dataset looks for cache entries: the audio and frames folders that match its clip
    config (either may be absent). Plain strings only: it is pickled into loader workers."""

    def __init__(self, root: str, audio: AudioCacheSpec | None, frames: FramesCacheSpec | None) -> None:
        self.root = os.fspath(root)
        self.audio_spec, self.frames_spec = audio, frames
        self.audio_dir = spec_dir(root, audio) if audio and os.path.isdir(spec_dir(root, audio)) else None
        self.frames_dir = spec_dir(root, frames) if frames and os.path.isdir(spec_dir(root, frames)) else None

    @property
    def empty(self) -> bool:
        return self.audio_dir is None and self.frames_dir is None

    def describe(self) -> str:
        parts = [f"{kind} in {folder}" for kind, folder in (("audio", self.audio_dir), ("frames", self.frames_dir)) if folder]
        return ", ".join(parts) or f"nothing under {self.root} matches this config"

    def _load(self, folder: str | None, name: str) -> np.ndarray | None:
        if folder is None:
            return None
        entry = os.path.join(folder, name)
        return np.load(entry, mmap_mode="r") if os.path.exists(entry) else None

    def open(self, path: str, backend: str | None = None) -> "CachedReader | MediaReader":
        """A reader of `path` that serves what the cache holds and decodes the rest."""
        name = entry_name(path)
        audio, frames = self._load(self.audio_dir, name), self._load(self.frames_dir, name)
        if audio is None and frames is None:
            return MediaReader(path, backend=backend)
        return CachedReader(path, backend, audio, self.audio_spec, frames, self.frames_spec)


class CachedReader:
    """MediaReader.read_video / read_audio from cache entries of one file. A request the entries
    cannot serve exactly (another size or rate, times off the cached grid) is decoded from the file,
    which is opened only then. `served` counts reads per source: cache or decode."""

    def __init__(self, path: str, backend: str | None, audio: np.ndarray | None, audio_spec: AudioCacheSpec | None,
                 frames: np.ndarray | None, frames_spec: FramesCacheSpec | None) -> None:
        self.path = path
        self.backend = backend
        self._audio, self._audio_spec = audio, audio_spec
        self._frames, self._frames_spec = frames, frames_spec
        self._media: MediaReader | None = None
        self.served = {"video_cache": 0, "video_decode": 0, "audio_cache": 0, "audio_decode": 0}

    def media(self) -> MediaReader:
        if self._media is None:
            self._media = MediaReader(self.path, backend=self.backend)
        return self._media

    @property
    def info(self):  # noqa: ANN201 - MediaInfo, from the file itself
        return self.media().info

    def close(self) -> None:
        self._audio = self._frames = None  # drop the maps: pages stay in the OS cache, not in this process
        if self._media is not None:
            self._media.close()
            self._media = None

    def __enter__(self) -> "CachedReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read_video(self, start: float, duration: float, fps: float | None = None, size: Any = None,
                   return_info: bool = False) -> torch.Tensor | tuple[torch.Tensor, VideoReadInfo]:
        """uint8 [T, H, W, 3] as MediaReader.read_video (from the frames entry when it can), with the
        same VideoReadInfo when asked (rows past the entry's last frame are padded frames)."""
        rows = self._frame_rows(start, duration, fps, size)
        if rows is None:
            self.served["video_decode"] += 1
            return self.media().read_video(start, duration, fps=fps, size=size, return_info=return_info)
        self.served["video_cache"] += 1
        last = len(self._frames) - 1
        frames = torch.from_numpy(np.ascontiguousarray(self._frames[np.minimum(rows, last)]))
        if not return_info:
            return frames
        times = torch.from_numpy(np.minimum(rows, last) / self._frames_spec.fps)
        return frames, VideoReadInfo(frame_times=times, padded_frames=int((rows > last).sum()))

    def _frame_rows(self, start: float, duration: float, fps: float | None, size: Any) -> np.ndarray | None:
        spec = self._frames_spec
        if self._frames is None or fps is None or size != spec.short_side:
            return None
        grid = grid_times(start, duration, fps) * spec.fps
        rows = np.round(grid)
        if np.any(np.abs(grid - rows) > TIME_EPS * spec.fps):
            return None  # not on the cached grid
        if start < 0:
            raise ClipOutsideStreamError(self.path, f"window starts at {start:.3f} s, outside the cached video")
        if rows[0] >= len(self._frames):
            return None  # wholly past the video: the file says whether the window is inside it (then padded)
        # past the last frame a direct read shows the last frame (select_on_grid): read_video does the same
        return rows.astype(np.int64)

    def read_audio(self, start: float, duration: float, sample_rate: int = 16000,
                   return_info: bool = False) -> torch.Tensor | tuple[torch.Tensor, AudioReadInfo]:
        """float32 [round(duration * sample_rate)] as MediaReader.read_audio (from the audio entry when
        it can), with the same AudioReadInfo when asked."""
        spec = self._audio_spec
        first = start * sample_rate
        usable = (self._audio is not None and sample_rate == spec.sample_rate
                  and start >= 0 and abs(first - round(first)) <= 1e-3)
        if not usable:
            self.served["audio_decode"] += 1
            return self.media().read_audio(start, duration, sample_rate=sample_rate, return_info=return_info)
        self.served["audio_cache"] += 1
        count, first = round(duration * sample_rate), round(first)
        out = np.full(count, np.nan, dtype=np.float32)  # past the entry: padding, as a direct read pads
        have = self._audio[first:first + count]
        out[:len(have)] = have
        padded = np.isnan(out)
        out[padded] = 0.0
        if not return_info:
            return torch.from_numpy(out)
        missing = np.flatnonzero(~padded)
        before = int(missing[0]) if len(missing) else count
        return torch.from_numpy(out), AudioReadInfo(sample_rate=sample_rate, padded_before=before,
                                                    padded_after=int(padded.sum()) - before)


def cache_for_clip(root: str, sample_rate: int, fps: float, short_side: int) -> ClipCache:
    """The ClipCache a training config reads: audio at `sample_rate`, frames at `fps` and `short_side`."""
    cache = ClipCache(root, AudioCacheSpec(sample_rate), FramesCacheSpec(float(fps), int(short_side)))
    if cache.empty:
        log.warning("data.cache_dir %s holds no cache for this config (expected %s or %s); decoding every clip",
                    root, spec_dir(root, cache.audio_spec), spec_dir(root, cache.frames_spec))
    else:
        log.info("reading cached %s", cache.describe())
    return cache


def _build_one(job: tuple[str, str, CacheSpec, str | None]) -> tuple[str, str | None, bool]:
    path, folder, spec, backend = job
    try:
        _, written = build_entry(path, folder, spec, backend)
    except (MediaError, OSError, RuntimeError) as err:
        return path, str(getattr(err, "reason", err)), False
    return path, None, written


def build_cache(paths: list[str], root: str, spec: CacheSpec, workers: int = 1,
                backend: str | None = None) -> dict[str, Any]:
    """Write the entries of `paths` under spec_dir(root, spec) with `workers` processes (existing
    entries are kept). Returns {"folder", "written", "kept", "failed": {path: reason}}."""
    folder = spec_dir(root, spec)
    _write_spec(folder, spec)
    jobs = [(p, folder, spec, backend) for p in dict.fromkeys(paths)]  # a path listed twice is cached once
    summary: dict[str, Any] = {"folder": folder, "written": 0, "kept": 0, "failed": {}}
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked child of a process whose threads hold locks (torch, decoders) can hang
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_build_one, jobs, chunksize=1))
    else:
        results = [_build_one(job) for job in jobs]
    for path, error, written in results:
        if error is not None:
            log.warning("not cached: %s: %s", path, error)
            summary["failed"][path] = error
        else:
            summary["written" if written else "kept"] += 1
    return summary

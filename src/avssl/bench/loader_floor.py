"""The decode floor of the loader benchmark: a reader wrapper that records every window a recipe
reads, the counts of those reads, and their replay with a bare MediaReader in one or more processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch


class RecordingReader:
    """Passes reads to `inner` and appends each window to `windows` (kind, start, duration, rate, size);
    on close, stores the reader's counters in `stats` and lets the reader go (a reader kept alive
    keeps its decoder's frame buffers: tens of MB at 720p)."""

    def __init__(self, inner: Any, windows: list[tuple], stats: dict[str, Any]) -> None:
        self.inner, self.windows, self.stats = inner, windows, stats
        self.path = inner.path

    @property
    def info(self) -> Any:
        return self.inner.info

    def read_video(self, start: float, duration: float, fps: float | None = None, size: Any = None, **kw: Any) -> Any:
        self.windows.append(("video", float(start), float(duration), fps, size))
        return self.inner.read_video(start, duration, fps=fps, size=size, **kw)

    def read_audio(self, start: float, duration: float, sample_rate: int = 16000, **kw: Any) -> Any:
        self.windows.append(("audio", float(start), float(duration), sample_rate, None))
        return self.inner.read_audio(start, duration, sample_rate=sample_rate, **kw)

    def close(self) -> None:
        if self.inner is None:
            return
        self.stats["decoded_video_frames"] = getattr(self.inner, "decoded_video_frames", None)
        if hasattr(self.inner, "served"):
            self.stats["served"] = dict(self.inner.served)
        self.inner.close()
        self.inner = None


class RecordingOpener:
    """Wraps a dataset's opener: every open is one (path, windows, stats) entry of `opens`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opens: list[tuple[str, list[tuple], dict[str, Any]]] = []

    def __call__(self, path: str) -> RecordingReader:
        windows: list[tuple] = []
        stats: dict[str, Any] = {}
        self.opens.append((path, windows, stats))
        return RecordingReader(self.inner(path), windows, stats)


def replay(samples: list[tuple[str, list[tuple]]]) -> float:
    """Seconds to read the recorded windows with a bare MediaReader: the decode floor."""
    from avssl.media import MediaReader

    torch.set_num_threads(1)  # as the loader's workers
    started = time.perf_counter()
    for path, windows in samples:
        with MediaReader(path) as reader:
            for kind, start, duration, rate, size in windows:
                if kind == "video":
                    reader.read_video(start, duration, fps=rate, size=size)
                else:
                    reader.read_audio(start, duration, sample_rate=rate)
    return time.perf_counter() - started


def _ready(_: int) -> int:
    torch.set_num_threads(1)
    return os.getpid()


def floor_ms_per_sample(samples: list[tuple[str, list[tuple]]], processes: int) -> float:
    """Wall ms per sample replaying `samples` split over `processes` processes (started beforehand)."""
    if processes <= 1:
        replay(samples[:2])  # warm up imports and decoders as the loader's warm-up batch does
        return 1000 * replay(samples) / len(samples)
    shards = [samples[i::processes] for i in range(processes)]
    # spawn, as a forked child of a threaded parent can hang; started (and warmed up) before timing
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_ready, range(processes)))
        started = time.perf_counter()
        list(pool.map(replay, shards))
        return 1000 * (time.perf_counter() - started) / len(samples)


def read_stats(recorder: RecordingOpener, warmup_samples: int) -> dict[str, Any]:
    """Opens per sample, reads per sample, and decoded vs returned video frames (the reader's counts)."""
    opens = recorder.opens[warmup_samples:]
    decoded = [st.get("decoded_video_frames") for _, _, st in opens]
    returned = sum(round(w[2] * w[3]) for _, ws, _ in opens for w in ws if w[0] == "video")
    stats: dict[str, Any] = {
        "opens": len(opens),
        "video_reads_per_open": round(sum(w[0] == "video" for _, ws, _ in opens for w in ws) / len(opens), 2),
        "audio_reads_per_open": round(sum(w[0] == "audio" for _, ws, _ in opens for w in ws) / len(opens), 2),
    }
    if all(d is not None for d in decoded):
        stats["video_frames_decoded_per_returned"] = round(sum(decoded) / max(returned, 1), 2)
    served = [st.get("served") for _, _, st in opens]
    if any(s is not None for s in served):
        stats["served"] = {k: sum(s[k] for s in served if s) for k in next(s for s in served if s)}
    return stats

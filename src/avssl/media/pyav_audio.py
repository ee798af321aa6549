"""Decoded PyAV audio frames into one mono float32 buffer, placed on the clip clock by their times."""

from __future__ import annotations

import numpy as np

from .timing import anchor_time, downmix


def channel_names(layout) -> tuple[str, ...]:
    """FFmpeg's channel names of a PyAV AudioLayout ("FL", "FR", "FC", "LFE", ...)."""
    return tuple(channel.name for channel in layout.channels)


def to_mono(frame) -> np.ndarray:
    """float32 [N] mono of an audio frame in any sample format: the standard downmix by its channel
    layout (avssl.media.timing.downmix: 5.1 keeps a centre-channel voice at 0.707, not 1/6)."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / 32768.0
    elif arr.dtype == np.int32:
        arr = arr.astype(np.float32) / 2147483648.0
    elif arr.dtype == np.uint8:
        arr = (arr.astype(np.float32) - 128.0) / 128.0
    if arr.shape[0] == 1:  # mono: no mixing (called per 1024-sample frame, its overhead showed)
        return arr[0].astype(np.float32, copy=False)
    return downmix(arr, channel_names(frame.layout))


def assemble(chunks: list[np.ndarray], times: list[float], rate: int, tick: float) -> tuple[np.ndarray, float, int]:
    """Join decoded frames into one buffer: contiguous runs keep their sample count (timestamps
    may be rounded), a real gap or jump in the timestamps starts a new run placed by its time."""
    tolerance = max(tick, 1.0 / rate) + 1e-3
    runs, run = [], [0]
    for i in range(1, len(chunks)):
        expected = times[i - 1] + len(chunks[i - 1]) / rate
        if abs(times[i] - expected) > tolerance:
            runs.append(run)
            run = []
        run.append(i)
    runs.append(run)
    anchors = [anchor_time([times[i] for i in r], [len(chunks[i]) for i in r], rate, tick) for r in runs]
    first = anchors[0]
    placed = []
    for r, anchor in zip(runs, anchors):
        data = np.concatenate([chunks[i] for i in r])
        placed.append((round((anchor - first) * rate), data))
    total = max(off + len(d) for off, d in placed)
    out = np.zeros(total, np.float32) if len(placed) > 1 else placed[0][1]
    if len(placed) > 1:
        for off, d in placed:
            if off < 0:
                d, off = d[-off:], 0
            out[off:off + len(d)] = d
    return out, first, rate

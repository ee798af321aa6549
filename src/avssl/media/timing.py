"""Backend-independent clip arithmetic: frame selection on a time grid, output sizes, audio anchoring
and sample-exact resampling. Pure numpy/torch; no decoder is imported here."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

# a frame whose time is within this of a boundary counts as on it (timestamps are rounded to ms or
# to the stream's time base, so exact float comparison would flip frames on boundaries)
TIME_EPS = 1e-6


# mono = the mean of the ITU-R BS.775 stereo downmix (FFmpeg's defaults: L' = L + 0.707 C + 0.707 Ls,
# R' = R + 0.707 C + 0.707 Rs, LFE left out), so a 5.1 centre-channel voice keeps 0.707 of its level
# instead of the 1/6 of a plain channel mean; by the channel names FFmpeg gives a layout
_SQRT_HALF = math.sqrt(0.5)
_MONO_WEIGHT = {
    "FL": 0.5, "FR": 0.5, "FLC": 0.5, "FRC": 0.5, "FC": _SQRT_HALF, "LFE": 0.0, "LFE2": 0.0,
    "BL": 0.5 * _SQRT_HALF, "BR": 0.5 * _SQRT_HALF, "SL": 0.5 * _SQRT_HALF, "SR": 0.5 * _SQRT_HALF,
    "BC": 0.5,
}


@lru_cache(maxsize=64)
def downmix_weights(channels: tuple[str, ...]) -> np.ndarray:
    """float32 [C] weights that mix channels (FFmpeg names: FL, FR, FC, LFE, BL, ...) to mono: one
    channel as it is, stereo as the mean, 5.1/7.1 and the like by the standard downmix above, and a
    layout with a channel outside that table (unnamed, height channels) as the plain mean."""
    if len(channels) <= 1:
        return np.ones(len(channels), dtype=np.float32)
    if not all(name in _MONO_WEIGHT for name in channels):
        return np.full(len(channels), 1.0 / len(channels), dtype=np.float32)
    return np.array([_MONO_WEIGHT[name] for name in channels], dtype=np.float32)


def downmix(samples: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
    """float32 [N] mono of float32 [C, N] samples whose channels are named `channels` (see
    downmix_weights); names that do not match the data in number give the plain mean."""
    count = samples.shape[0]
    samples = samples.astype(np.float32, copy=False)
    if count == 1:
        return samples[0]
    names = tuple(channels) if len(channels) == count else tuple(f"channel {i}" for i in range(count))
    return downmix_weights(names) @ samples


def check_window(path: str, start: float, duration: float) -> None:
    """Raise ValueError for a window that cannot be read from any file."""
    if not (math.isfinite(start) and math.isfinite(duration)):
        raise ValueError(f"{path}: start and duration must be finite, got {start}, {duration}")
    if duration <= 0:
        raise ValueError(f"{path}: duration must be > 0, got {duration}")


def grid_times(start: float, duration: float, fps: float) -> np.ndarray:
    """[T] times start + k / fps for every k with that time < start + duration."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    count = max(1, math.ceil(duration * fps - 1e-9))
    return start + np.arange(count, dtype=np.float64) / fps


def select_in_window(times: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of frames whose time lies in [start, end)."""
    return np.flatnonzero((times >= start - TIME_EPS) & (times < end - TIME_EPS))


def select_on_grid(times: np.ndarray, grid: np.ndarray, video_end: float | None) -> tuple[np.ndarray, int]:
    """For each grid time, the index of the frame shown then (the last frame with time <= it).

    times: [N] frame times, ascending. grid: [T]. video_end: when the last frame stops being shown
    (None if unknown: no grid time is past it). Grid times before the first frame or at/after
    video_end take the nearest frame and are counted in the returned number of padded frames.
    """
    idx = np.searchsorted(times - TIME_EPS, grid, side="right") - 1
    padded = int(np.sum(idx < 0))
    if video_end is not None:
        padded += int(np.sum(grid >= video_end - TIME_EPS))
    return np.clip(idx, 0, len(times) - 1), padded


def output_size(height: int, width: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of the returned frames. size: None = native; int = the short side, aspect kept
    (the long side rounded to the nearest pixel); (H, W) = exactly that."""
    if size is None:
        return height, width
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size must be > 0, got {size}")
        if height <= width:
            return size, max(1, round(width * size / height))
        return max(1, round(height * size / width)), size
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return h, w


def anchor_time(frame_times: list[float], frame_samples: list[int], sample_rate: int, tick: float) -> float:
    """Time of the first sample of a run of contiguous audio frames, to better than `tick`.

    Containers like Matroska/WebM store times rounded to `tick` (1 ms) while frames hold e.g. 1024
    samples, so one frame's time is up to half a tick off. FFmpeg rounds to nearest with ties up,
    so frame i (c_i samples after the run start) bounds the start to
    [t_i - c_i/sr - tick/2, t_i - c_i/sr + tick/2). The intersection over the run narrows to about a
    sample when frame lengths are not whole ticks (AAC), and the lowest consistent time is taken;
    that is exact when every time is a tie (Opus: 20 ms frames after a 6.5 ms pre-skip). Falls back
    to the first frame's time if the intervals do not intersect (the run is not contiguous).
    """
    if tick <= 1.0 / sample_rate or len(frame_times) < 2:
        return frame_times[0]
    lo, hi = -math.inf, math.inf
    before = 0
    for t, n in zip(frame_times, frame_samples):
        base = t - before / sample_rate
        lo, hi = max(lo, base - tick / 2), min(hi, base + tick / 2)
        before += n
    if lo > hi + TIME_EPS:
        return frame_times[0]
    return lo


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, width_zeros: int = 16, rolloff: float = 0.945) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc (Hann) kernels [new, 1, K] and the half-width in input samples."""
    base = min(orig, new) * rolloff
    width = math.ceil(width_zeros * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx) * base
    t = t.clamp(-width_zeros, width_zeros)
    window = torch.cos(t * math.pi / width_zeros / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return (kernel * window * base / orig).to(torch.float32), width


_GATHER_BUDGET = 1 << 20  # float32 values gathered at a time by `resample` (4 MB)


@lru_cache(maxsize=16)
def _polyphase_taps(orig: int, new: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The sinc kernels cut to their non-zero support: taps [new, W], the offset of each phase's
    first tap in its K-sample frame [new], and the half-width in input samples."""
    kernel, width = _sinc_kernel(orig, new)
    full = kernel[:, 0].numpy()  # [new, K]; most of each row is outside the window (exact zeros)
    nonzero = full != 0
    first = nonzero.argmax(axis=1)
    last = full.shape[1] - 1 - nonzero[:, ::-1].argmax(axis=1)
    span = int((last - first).max()) + 1
    first = np.minimum(first, full.shape[1] - span)
    taps = np.stack([full[p, first[p]:first[p] + span] for p in range(new)])
    return np.ascontiguousarray(taps), first.astype(np.int64), width


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited resampling of float32 [N] with zero delay: output sample j is the signal at
    input position j * orig_rate / new_rate. Returns [ceil(N * new_rate / orig_rate)].

    Polyphase in numpy on one thread: a 1 s window is ~1.5 M multiply-adds, far too small for
    a multi-threaded conv; on a busy machine waking torch's idle worker threads cost 20-80 ms a call.
    """
    if orig_rate == new_rate:
        return wave
    g = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // g, new_rate // g
    taps, first, width = _polyphase_taps(orig, new)
    length, span = wave.shape[-1], taps.shape[1]
    x = wave.detach().cpu().numpy().astype(np.float32, copy=False)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, (width, width + orig + span)), span)
    frames = length // orig + 1  # output frames of `new` samples each
    out = np.empty((frames, new), dtype=np.float32)
    chunk = max(1, _GATHER_BUDGET // (new * span))  # bounds the gathered copy for long inputs
    for m0 in range(0, frames, chunk):
        m = np.arange(m0, min(frames, m0 + chunk))
        # output m * new + p is taps[p] against input m * orig + first[p] - width onwards
        out[m0:m0 + len(m)] = np.einsum("mpw,pw->mp", windows[m[:, None] * orig + first[None, :]], taps)
    return torch.from_numpy(out.reshape(-1)[: math.ceil(new * length / orig)].copy())


def audio_window(
    samples: np.ndarray, first_time: float, native_rate: int, start: float, duration: float, rate: int
) -> tuple[torch.Tensor, int, int]:
    """Cut [start, start + duration) out of mono native-rate samples that begin at `first_time`,
    resampled to `rate`. Returns (float32 [round(duration * rate)], padded_before, padded_after)."""
    count = round(duration * rate)
    g = math.gcd(native_rate, rate)
    step = native_rate // g  # native samples per `rate // g` output samples
    # context on both sides so the resampling filter has real signal at the window edges
    margin = step * math.ceil(0.02 * native_rate / step)
    first = round((start - first_time) * native_rate) - margin
    need = margin * 2 + math.ceil(count * native_rate / rate) + step
    buf = np.zeros(need, dtype=np.float32)
    src_lo, src_hi = max(first, 0), min(first + need, len(samples))
    if src_hi > src_lo:
        buf[src_lo - first:src_hi - first] = samples[src_lo:src_hi]
    out = resample(torch.from_numpy(buf), native_rate, rate)
    skip = margin * rate // native_rate
    out = out[skip:skip + count].contiguous()
    # how much of the window has no decoded samples behind it, in output samples
    valid_lo = (first_time - start) * rate
    valid_hi = (first_time + len(samples) / native_rate - start) * rate
    before = int(min(count, max(0, math.ceil(valid_lo - 1e-6))))
    after = int(min(count - before, max(0, count - math.floor(valid_hi + 1e-6))))
    if before:
        out[:before] = 0
    if after:
        out[count - after:] = 0
    return out, before, after

"""Ground-truth test media: frame indices written into pixels, beeps with known onsets.

A frame's index is drawn as a band of black/white blocks (one bit each, most significant first)
across the full width of the top quarter of the frame, so it survives lossy codecs and any resize;
the audio track is silence with sine beeps starting at chosen instants.
"""

from __future__ import annotations

import math

import numpy as np

CODE_BITS = 12  # frame indices up to 4095
BAND_FRACTION = 0.25  # share of the frame height used by the code band


def encode_frame_index(index: int, height: int, width: int, bits: int = CODE_BITS) -> np.ndarray:
    """uint8 [height, width, 3]: `index` in binary as blocks over the top band, grey below."""
    if not 0 <= index < 2**bits:
        raise ValueError(f"frame index {index} does not fit in {bits} bits")
    if width < bits * 4 or height < 8:
        raise ValueError(f"frame {height}x{width} too small for a {bits}-bit code (need width >= {bits * 4})")
    frame = np.full((height, width, 3), 96, dtype=np.uint8)
    band = max(4, int(height * BAND_FRACTION))
    edges = np.linspace(0, width, bits + 1).round().astype(int)
    for b in range(bits):
        on = (index >> (bits - 1 - b)) & 1
        frame[:band, edges[b]:edges[b + 1]] = 255 if on else 0
    return frame


def decode_frame_index(frame: np.ndarray, bits: int = CODE_BITS) -> int:
    """The index `encode_frame_index` wrote into a (decoded, possibly resized) frame [H, W, 3]."""
    frame = np.asarray(frame)
    height, width = frame.shape[:2]
    band = max(2, int(height * BAND_FRACTION))
    edges = np.linspace(0, width, bits + 1)
    value = 0
    for b in range(bits):
        # the middle half of each block: away from the edges that codecs and scalers blur
        lo = int(edges[b] + (edges[b + 1] - edges[b]) / 4)
        hi = max(lo + 1, int(edges[b + 1] - (edges[b + 1] - edges[b]) / 4))
        level = frame[band // 4:max(band // 4 + 1, 3 * band // 4), lo:hi].mean()
        value = (value << 1) | int(level > 128)
    return value


def coded_frames(count: int, height: int, width: int, first: int = 0) -> np.ndarray:
    """uint8 [count, height, width, 3]: frames first, first + 1, ... each carrying its index."""
    return np.stack([encode_frame_index(first + i, height, width) for i in range(count)])


def beep_track(
    onsets: np.ndarray | list[float], duration: float, sample_rate: int, freq: float = 1000.0,
    beep_length: float = 0.08, amplitude: float = 0.5,
) -> np.ndarray:
    """float32 [round(duration * sample_rate)]: silence with a sine beep starting at each onset (s).

    Each beep is a cosine (full amplitude at the exact onset time, so its smoothed power rises
    steepest where `detect_onsets` measures it).
    """
    n = round(duration * sample_rate)
    out = np.zeros(n, dtype=np.float32)
    for onset in onsets:
        lo, hi = max(0, math.ceil(onset * sample_rate)), min(n, math.ceil((onset + beep_length) * sample_rate))
        t = np.arange(lo, hi) / sample_rate - onset
        out[lo:hi] = amplitude * np.cos(2 * np.pi * freq * t)
    return out


def detect_onsets(samples: np.ndarray, sample_rate: int, freq: float = 1000.0, min_gap: float = 0.05) -> np.ndarray:
    """Onset times (s from the first sample, sub-sample precise) of the beeps in a signal [N].

    The power smoothed over one period of the beep (centred) reaches half of the beep's steady
    power when half a period of beep is inside the window, i.e. at the onset itself; lossy codecs blur both sides alike, so the crossing
    stays put. Beeps must be longer than two periods and `min_gap` apart.
    """
    x = np.asarray(samples, dtype=np.float64)
    period = sample_rate / freq
    width = max(1, int(round(period)))
    power = np.convolve(x * x, np.ones(width) / width, mode="same")
    if power.max() <= 0:
        return np.zeros(0)
    half = power.max() / 2  # steady power of the loudest beep, halved
    above = power >= half
    rises = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    onsets, last = [], -np.inf
    for r in rises:
        # linear interpolation of the crossing between samples r-1 and r; "same" convolution of an
        # even width centres the window half a sample late
        frac = (half - power[r - 1]) / (power[r] - power[r - 1])
        centre_shift = (width - 1) / 2 - (width // 2)
        t = (r - 1 + frac + centre_shift) / sample_rate
        if t - last >= min_gap:
            onsets.append(t)
            last = t
    return np.asarray(onsets)

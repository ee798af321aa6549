"""Pretext views with labels: audio playback speed, intra-modal order, inter-modal order.

Video clips are [T, H, W, 3] (uint8 as read_video returns them, or float); waveforms are [N]
float32. Every view is deterministic given a numpy or torch Generator and returns its integer label.
Video speed is read from the decoder's frame grid (avssl.data.clip_io.read_video_clip(speed=...)).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from avssl.data.sampling.windows import ClipPair, WindowSpec, grid_draw

# Inter-modal order labels: where the audio window lies relative to the video window.
AUDIO_BEFORE, AUDIO_IN_SYNC, AUDIO_AFTER = 0, 1, 2
FORWARD, REVERSED = 0, 1
# Zero crossings of the anti-alias sinc on each side, in output samples: steep enough that a tone
# above the new Nyquist frequency is attenuated by > 30 dB, short enough to be cheap.
_SINC_ZEROS = 8
_CUTOFF = 0.9  # of the new Nyquist frequency: leaves room for the Hann window's transition band

Rng = np.random.Generator | torch.Generator


def draw_index(rng: Rng, high: int) -> int:
    """A uniform integer in [0, high) from a numpy or torch Generator."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(high))
    if isinstance(rng, torch.Generator):
        return int(torch.randint(high, (1,), generator=rng).item())
    raise TypeError(f"rng must be a numpy or torch Generator, got {type(rng).__name__}")


def as_numpy_rng(rng: Rng) -> np.random.Generator:
    """The numpy Generator itself, or one seeded from the torch Generator's next draw."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(draw_index(rng, 2**62))


# ---------------------------------------------------------------- playback speed


def _check_speed(speed: int) -> int:
    if int(speed) != speed or speed < 1:
        raise ValueError(f"speed must be an integer frame skip >= 1, got {speed!r}")
    return int(speed)


@lru_cache(maxsize=16)
def _lowpass(speed: int) -> torch.Tensor:
    """Hann-windowed sinc with cutoff _CUTOFF / speed of the source Nyquist, summing to 1: [taps]."""
    half = _SINC_ZEROS * speed
    m = torch.arange(-half, half + 1, dtype=torch.float64)
    cutoff = _CUTOFF / speed  # in units of the source Nyquist frequency
    # the Hann window of 2 * half + 3 points without its zero end points: 2 * half + 1 nonzero taps
    window = torch.hann_window(2 * half + 3, periodic=False, dtype=torch.float64)[1:-1]
    kernel = cutoff * torch.sinc(cutoff * m) * window
    return kernel / kernel.sum()


def audio_at_speed(waveform: torch.Tensor, speed: int, num_samples: int | None = None) -> torch.Tensor:
    """Play the first speed * N samples `speed` times faster: [speed*N] -> [N].

    The window is low-pass filtered below the new Nyquist frequency and every speed-th sample kept,
    i.e. resampled from speed * N to N samples at the same rate: duration shrinks and every
    frequency (pitch) rises by `speed`, as when a recording is played faster. Speed 1 goes through
    the same filter (cutoff at _CUTOFF of its Nyquist frequency), so that every speed has the same
    spectral edge and the top of the spectrum does not tell speed 1 from the others. Output sample k
    is centred on source sample k * speed; a linear ramp stays exact (the edges are extended by odd
    reflection, which continues a straight line). N defaults to len(waveform) // speed.
    """
    speed = _check_speed(speed)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be [N], got shape {tuple(waveform.shape)}")
    n = waveform.shape[0] // speed if num_samples is None else int(num_samples)
    need = speed * n
    if n < 1 or waveform.shape[0] < need:
        raise ValueError(f"speed {speed} x {n} samples needs {need} source samples, got {waveform.shape[0]}")
    source = waveform[:need]
    kernel = _lowpass(speed)
    half = (kernel.numel() - 1) // 2
    if need <= half:
        raise ValueError(f"speed {speed} needs more than {half} source samples, got {need}")
    # float32 is enough for audio in [-1, 1] and twice as fast as float64 here
    x = source.to(torch.promote_types(source.dtype, torch.float32))
    left = 2 * x[0] - x[1 : half + 1].flip(0)
    right = 2 * x[-1] - x[-half - 1 : -1].flip(0)
    padded = torch.cat([left, x, right])
    out = F.conv1d(padded.view(1, 1, -1), kernel.to(x.dtype).view(1, 1, -1), stride=speed).view(-1)
    return out[:n].to(waveform.dtype)


# ---------------------------------------------------------------- intra-modal order


@lru_cache(maxsize=16)
def order_classes(num_clips: int, merge_reverse: bool = False) -> tuple[tuple[int, ...], ...]:
    """The fixed list of order classes: all permutations of range(num_clips) in lexicographic order
    (num_clips! classes), or with merge_reverse one class per pair {p, reversed p}, represented by
    the lexicographically smaller of the two (num_clips! / 2 classes)."""
    if num_clips < 2 or (merge_reverse and num_clips < 3):
        raise ValueError(f"order needs num_clips >= 2 (>= 3 with merge_reverse), got {num_clips}")
    perms = itertools.permutations(range(num_clips))
    if merge_reverse:
        return tuple(p for p in perms if p < p[::-1])
    return tuple(perms)


def order_label(permutation: tuple[int, ...], merge_reverse: bool = False) -> int:
    """The class of a permutation in `order_classes(len(permutation), merge_reverse)`."""
    p = tuple(int(i) for i in permutation)
    if merge_reverse:
        p = min(p, p[::-1])
    return order_classes(len(p), merge_reverse).index(p)


def order_view(
    clip: torch.Tensor,
    rng: Rng,
    num_clips: int,
    merge_reverse: bool = False,
    gap: int = 0,
) -> tuple[torch.Tensor, int]:
    """Cut [L, ...] into num_clips sub-clips of P = (L - (num_clips - 1) * gap) // num_clips items with
    `gap` items left out between neighbours (so that the frames or samples at a boundary do not
    continue each other and give the order away), shuffle them: returns ([num_clips, P, ...], label).
    A remainder at the end is dropped.

    A permutation p is drawn uniformly from all num_clips! orders; output sub-clip j is source
    sub-clip p[j]; the label is `order_label(p, merge_reverse)`, so label k means p is
    order_classes(...)[k] (or, merged, its reverse).
    """
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    length = (clip.shape[0] - (num_clips - 1) * gap) // num_clips
    if length < 1:
        raise ValueError(f"{clip.shape[0]} frames or samples cannot make {num_clips} sub-clips {gap} apart")
    classes = order_classes(num_clips, False)
    perm = classes[draw_index(rng, len(classes))]
    parts = torch.stack([clip[j * (length + gap): j * (length + gap) + length] for j in range(num_clips)])
    return parts[list(perm)], order_label(perm, merge_reverse)


def in_source_order(parts: torch.Tensor, labels: torch.Tensor, num_clips: int) -> torch.Tensor:
    """The inverse of order_view's shuffle for a batch: pieces [B, n, ...] (or their features) with their
    permutation labels [B] (merge_reverse False) -> [B, n, ...] in the order they had in the clip
    (output piece j of a sample was source piece perm[j])."""
    perms = torch.tensor(order_classes(num_clips, False), device=parts.device)[labels]  # [B, n]
    index = perms.view(*perms.shape, *([1] * (parts.dim() - 2))).expand_as(parts)
    return torch.empty_like(parts).scatter_(1, index, parts)


# ---------------------------------------------------------------- inter-modal order


def inter_modal_order_view(
    spec: WindowSpec,
    duration: float,
    rng: Rng,
    *,
    min_offset: float = 1.0,
    max_offset: float = 2.0,
    video_index: int = 0,
) -> tuple[ClipPair, int]:
    """Windows of one file and where the audio lies relative to the video: 3 classes.

    Label 0 (AUDIO_BEFORE): audio_start = video_start - o; 1 (AUDIO_IN_SYNC): equal starts;
    2 (AUDIO_AFTER): audio_start = video_start + o; o uniform in [min_offset, max_offset] s (on the
    frame grid with spec.fps). The video start is drawn before the label, from the positions where
    all three cases fit, so the position in the file tells nothing about the label.
    """
    if not 0 < min_offset <= max_offset:
        raise ValueError(f"need 0 < min_offset <= max_offset, got {min_offset}, {max_offset}")
    vd, ad, fps = spec.video_duration, float(spec.audio_duration), spec.fps
    low, high = max_offset, min(duration - vd, duration - ad - max_offset)
    if high < low - 1e-9:
        raise ValueError(
            f"video {video_index}: a {duration:.3f} s file is too short for audio "
            f"{max_offset:.3f} s before and after a {vd:.3f} s video window (needs "
            f"{max(vd + max_offset, ad + 2 * max_offset):.3f} s)"
        )
    np_rng = as_numpy_rng(rng)
    video_start = grid_draw(np_rng, low, high, fps)
    label = int(np_rng.integers(3))
    offset = 0.0 if label == AUDIO_IN_SYNC else grid_draw(np_rng, min_offset, max_offset, fps)
    audio_start = video_start + (offset if label == AUDIO_AFTER else -offset)
    if fps is not None:
        audio_start = round(audio_start * fps) / fps
    return ClipPair(video_index, video_start, video_index, max(0.0, audio_start)), label

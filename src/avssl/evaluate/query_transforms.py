"""Fingerprinting query transforms: degraded copies of a decoded reference clip.

Each transform maps an `AVClip` (video uint8 [T, H, W, 3], mono audio float32 [N]) and a numpy
Generator to a new AVClip. Spatial transforms give back the original H x W (a crop is zoomed back, a
downscale is upscaled back) so one model input size serves references and queries alike. `reencode`
writes a real low-bitrate mp4 through the synthetic-media encoder and decodes it with avssl.media.
Strengths are the defaults of DEFAULT_TRANSFORMS (assumed: Black et al. do not list theirs here).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import resample_poly

from avssl.errors import UsageError


@dataclass(frozen=True)
class AVClip:
    """A decoded clip: video uint8 [T, H, W, 3] (or None), audio float32 [N] (or None)."""

    video: torch.Tensor | None
    audio: torch.Tensor | None
    fps: float = 25.0
    sample_rate: int = 16000


Transform = Callable[[AVClip, np.random.Generator], AVClip]


def _resize_video(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    x = video.permute(0, 3, 1, 2).float()  # [T, 3, H, W]
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def crop(clip: AVClip, rng: np.random.Generator, fraction: float = 0.7) -> AVClip:
    """A random crop of `fraction` of each side, zoomed back to the original size."""
    t, h, w, _ = clip.video.shape
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return replace(clip, video=_resize_video(clip.video[:, top:top + ch, left:left + cw], h, w))


def resize(clip: AVClip, rng: np.random.Generator, scale: float = 0.25) -> AVClip:
    """Downscale by `scale` (antialiased) and back up: the detail lost at low resolution."""
    t, h, w, _ = clip.video.shape
    small = _resize_video(clip.video, max(1, round(h * scale)), max(1, round(w * scale)))
    return replace(clip, video=_resize_video(small, h, w))


def blur(clip: AVClip, rng: np.random.Generator, sigma: float = 2.0) -> AVClip:
    """Gaussian blur of standard deviation `sigma` pixels (separable, kernel 2*ceil(3 sigma)+1, reflect padding)."""
    radius = int(math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    x = clip.video.permute(0, 3, 1, 2).float().reshape(-1, 1, *clip.video.shape[1:3])  # [T*3, 1, H, W]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    t, h, w, _ = clip.video.shape
    out = x.reshape(t, 3, h, w).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return replace(clip, video=out)


def brightness(clip: AVClip, rng: np.random.Generator, delta: float = 0.3) -> AVClip:
    """Add `delta` x 255 to every pixel (clipped to [0, 255])."""
    out = (clip.video.float() + delta * 255.0).round().clamp(0, 255).to(torch.uint8)
    return replace(clip, video=out)


def speed(clip: AVClip, rng: np.random.Generator, factor: float = 1.5) -> AVClip:
    """Play `factor` times faster: frame i shows source frame floor(i * factor); audio is resampled
    to N / factor samples (pitch rises with speed, as a sped-up upload's does)."""
    if factor <= 0:
        raise UsageError(f"speed factor must be > 0, got {factor}")
    video = audio = None
    if clip.video is not None:
        t = clip.video.shape[0]
        index = (np.arange(max(1, math.floor(t / factor))) * factor).astype(np.int64).clip(0, t - 1)
        video = clip.video[torch.from_numpy(index)]
    if clip.audio is not None:
        ratio = Fraction(factor).limit_denominator(100)
        audio = torch.from_numpy(resample_poly(clip.audio.numpy(), ratio.denominator, ratio.numerator)
                                 .astype(np.float32))
    return replace(clip, video=video, audio=audio)


def audio_noise(clip: AVClip, rng: np.random.Generator, snr_db: float = 10.0) -> AVClip:
    """Add white Gaussian noise at `snr_db` dB below the signal's power (silence gets 1e-4 RMS noise)."""
    x = clip.audio.numpy().astype(np.float64)
    power = float(np.mean(x ** 2)) if len(x) else 0.0
    rms = math.sqrt(power / 10 ** (snr_db / 10)) if power > 0 else 1e-4
    noisy = x + rng.normal(0.0, rms, size=x.shape)
    return replace(clip, audio=torch.from_numpy(noisy.astype(np.float32)))


def audio_resample(clip: AVClip, rng: np.random.Generator, rate: int = 8000) -> AVClip:
    """Resample the audio to `rate` Hz and back (the band above rate / 2 is lost); same length."""
    n = len(clip.audio)
    ratio = Fraction(rate, clip.sample_rate)
    low = resample_poly(clip.audio.numpy(), ratio.numerator, ratio.denominator)
    back = resample_poly(low, ratio.denominator, ratio.numerator)[:n]
    back = np.pad(back, (0, n - len(back)))
    return replace(clip, audio=torch.from_numpy(back.astype(np.float32)))


def reencode(clip: AVClip, rng: np.random.Generator, video_bitrate: int = 64_000,
             workdir: str | None = None) -> AVClip:
    """Encode to an H.264/AAC mp4 at `video_bitrate` bit/s and decode it back with avssl.media.

    H and W must be even (yuv420p). The decoded audio has the input's length and rate.
    """
    from avssl.media import read_audio, read_video
    from avssl.media.writer import write_media

    t, h, w, _ = clip.video.shape
    if h % 2 or w % 2:
        raise UsageError(f"reencode needs an even frame size, got {h}x{w}")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "query.mp4")
        audio = None if clip.audio is None else clip.audio.numpy()
        write_media(path, clip.video.numpy(), fps=clip.fps, audio=audio, sample_rate=clip.sample_rate,
                    fmt="mp4", video_bitrate=video_bitrate, crf=None)
        video = read_video(path, 0.0, t / clip.fps)
        decoded = None
        if audio is not None:
            decoded = read_audio(path, 0.0, len(audio) / clip.sample_rate, sample_rate=clip.sample_rate)
    return replace(clip, video=video, audio=decoded)


# name -> transform with its default strength; the set of query types of the fingerprinting benchmark
DEFAULT_TRANSFORMS: dict[str, Transform] = {
    "crop": crop,
    "resize": resize,
    "blur": blur,
    "brightness": brightness,
    "reencode": reencode,
    "speed": speed,
    "audio_noise": audio_noise,
    "audio_resample": audio_resample,
}

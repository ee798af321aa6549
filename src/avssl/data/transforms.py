"""Seeded augmentations: video (crop boxes, evaluation resize and crop, colour, grayscale, normalise),
audio (gain, SpecAugment). The training crop itself runs on uint8 in the loader worker
(avssl.data.clip_io.random_crop_flip) with the boxes drawn here.

Layout: a clip is channels-first ``[C, T, H, W]`` (C = 3, RGB), a batch of clips ``[B, C, T, H, W]``,
as the video encoders consume them; ``to_channels_first`` turns the reader's ``[T, H, W, 3]`` into it.
Every function accepts a single clip or a batch; random parameters are drawn once per clip (the same
crop, flip and colour change for all frames of a clip, so motion and timing cues stay intact) from an
explicit ``torch.Generator`` (a CPU generator, also for CUDA tensors: parameters are drawn on the CPU
and moved), so a seed reproduces the exact augmentation. Geometric ops keep the dtype (uint8 stays
uint8, so crops can run before the float conversion); colour ops need floats in [0, 1] and convert
uint8 input (x / 255) on the tensor's device.

Assumed defaults (torchvision / SimCLR conventions, common in video SSL; change them in the config):
crop scale (0.08, 1.0), ratio (3/4, 4/3); flip p = 0.5; colour jitter applied with p = 0.8 with
brightness 0.4, contrast 0.4, saturation 0.4, hue 0.1, in that fixed order; grayscale p = 0.2;
normalisation with the Kinetics-400 mean/std used by torchvision's video models; gain in [-6, 6] dB;
SpecAugment 2 frequency masks of up to 8 mel bins and 2 time masks of up to 20 frames, filled with
the example's mean log-mel value.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from avssl.config.data import KINETICS_MEAN, KINETICS_STD, AudioAugmentConfig

_LUMA = (0.2989, 0.587, 0.114)
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64
)


def _as_batch(clips: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if clips.dim() == 4:
        return clips.unsqueeze(0), True
    if clips.dim() == 5:
        return clips, False
    raise ValueError(f"expected a clip [C, T, H, W] or clips [B, C, T, H, W], got {tuple(clips.shape)}")


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _per_clip(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] parameters -> [B, 1, 1, 1, 1] on ``like``'s device and dtype."""
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1, 1)


def to_channels_first(frames: torch.Tensor) -> torch.Tensor:
    """[T, H, W, 3] -> [3, T, H, W] (or [B, T, H, W, 3] -> [B, 3, T, H, W]); a view, no copy."""
    if frames.dim() not in (4, 5) or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [..., T, H, W, 3], got {tuple(frames.shape)}")
    return frames.movedim(-1, -4)


def to_float(clips: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [0, 1] on the same device; float input is returned as is."""
    if clips.dtype == torch.uint8:
        return clips.float().div_(255.0)
    if not clips.is_floating_point():
        raise ValueError(f"clips must be uint8 or float, got {clips.dtype}")
    return clips


def sample_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    *,
    generator: torch.Generator,
    attempts: int = 10,
) -> torch.Tensor:
    """Random-resized-crop boxes as torchvision draws them: [B, 4] int64 rows (top, left, h, w).

    Area fraction ~ U(scale), log aspect (w / h) ~ U(log ratio); the first of ``attempts`` draws that
    fits is kept, else a centre crop with the aspect clamped to ``ratio``.
    """
    if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
        raise ValueError(f"bad crop scale {scale} or ratio {ratio}")
    area = height * width * _uniform(batch * attempts, *scale, generator).view(batch, attempts)
    log_r = _uniform(batch * attempts, math.log(ratio[0]), math.log(ratio[1]), generator)
    aspect = torch.exp(log_r).view(batch, attempts)
    w = torch.round(torch.sqrt(area * aspect)).long()
    h = torch.round(torch.sqrt(area / aspect)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(fits.any(1), fits.long().argmax(1), torch.full((batch,), -1))
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback = (round(width / ratio[0]), width)
    elif in_ratio > ratio[1]:
        fallback = (height, round(height * ratio[1]))
    else:
        fallback = (height, width)
    rows = torch.arange(batch)
    box_h = torch.where(first >= 0, h[rows, first.clamp(min=0)], fallback[0])
    box_w = torch.where(first >= 0, w[rows, first.clamp(min=0)], fallback[1])
    u_top, u_left = torch.rand(2, batch, generator=generator, dtype=torch.float64)
    top = torch.where(first >= 0, (u_top * (height - box_h + 1)).long(), (height - box_h) // 2)
    left = torch.where(first >= 0, (u_left * (width - box_w + 1)).long(), (width - box_w) // 2)
    return torch.stack([top, left, box_h, box_w], dim=1)


def _resize(clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[C, T, h, w] -> [C, T, size]; bilinear with antialiasing; uint8 is rounded back to uint8."""
    frames = clip.permute(1, 0, 2, 3)  # interpolate works on 4D [N, C, H, W]
    resized = F.interpolate(
        frames.float() if clip.dtype == torch.uint8 else frames,
        size=size, mode="bilinear", align_corners=False, antialias=True,
    )
    if clip.dtype == torch.uint8:
        resized = resized.round_().clamp_(0, 255).to(torch.uint8)
    return resized.permute(1, 0, 2, 3)


def resize_short_side(clips: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the shorter side is ``size``, keeping the aspect (rounded): evaluation resizing."""
    height, width = clips.shape[-2:]
    factor = size / min(height, width)
    out_size = (max(1, round(height * factor)), max(1, round(width * factor)))
    batch, single = _as_batch(clips)
    out = torch.stack([_resize(clip, out_size) for clip in batch])
    return out[0] if single else out


def center_crop(clips: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Deterministic centre crop to (h, w) = ``size``, offset rounded down: [..., H, W] -> [..., h, w]."""
    height, width = clips.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if h > height or w > width:
        raise ValueError(f"centre crop {h}x{w} is larger than the clip ({height}x{width})")
    top, left = (height - h) // 2, (width - w) // 2
    return clips[..., top : top + h, left : left + w]


def _grayscale(batch: torch.Tensor) -> torch.Tensor:
    """[B, 3, T, H, W] -> [B, 1, T, H, W] luma."""
    weights = torch.tensor(_LUMA, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1, 1)
    return (batch * weights).sum(1, keepdim=True)


def _hue_matrices(shift: torch.Tensor) -> torch.Tensor:
    """[B] hue shifts in turns -> [B, 3, 3] RGB matrices rotating the YIQ chroma plane."""
    angle = 2 * math.pi * shift
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(shift.shape[0], 3, 3, dtype=torch.float64)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    return torch.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ


def color_jitter(
    clips: torch.Tensor,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """Colour jitter in [0, 1] float, one set of factors per clip, applied with probability ``p``.

    brightness: x * f; contrast: blend with the clip's mean luma (over all its frames, so the
    change is the same for every frame); saturation: blend with each pixel's luma; hue: rotation of
    the YIQ chroma plane by 2*pi*h (a linear approximation of the HSV hue shift that keeps luma).
    Factors f ~ U(max(0, 1 - s), 1 + s) for strength s; h ~ U(-hue, hue). Output is clamped to [0, 1].
    """
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5], got {hue}")
    batch, single = _as_batch(to_float(clips))
    n = batch.shape[0]
    applied = torch.rand(n, generator=generator) < p

    def factors(strength: float) -> torch.Tensor:
        drawn = _uniform(n, max(0.0, 1 - strength), 1 + strength, generator)
        return torch.where(applied, drawn, torch.ones(n, dtype=torch.float64))

    f_bright, f_contrast, f_sat = factors(brightness), factors(contrast), factors(saturation)
    no_shift = torch.zeros(n, dtype=torch.float64)
    h_shift = torch.where(applied, _uniform(n, -hue, hue, generator), no_shift)

    out = (batch * _per_clip(f_bright, batch)).clamp(0, 1)
    mean_luma = _grayscale(out).mean(dim=(2, 3, 4), keepdim=True)
    f = _per_clip(f_contrast, out)
    out = (f * out + (1 - f) * mean_luma).clamp(0, 1)
    f = _per_clip(f_sat, out)
    out = (f * out + (1 - f) * _grayscale(out)).clamp(0, 1)
    matrices = _hue_matrices(h_shift).to(device=out.device, dtype=out.dtype)
    out = torch.einsum("bck,bkthw->bcthw", matrices, out).clamp(0, 1)
    return out[0] if single else out


def random_grayscale(clips: torch.Tensor, p: float = 0.2, *, generator: torch.Generator) -> torch.Tensor:
    """Replace a clip by its luma on all three channels with probability ``p`` (float in [0, 1])."""
    batch, single = _as_batch(to_float(clips))
    gray = (torch.rand(batch.shape[0], generator=generator) < p).to(batch.device)
    out = torch.where(gray.view(-1, 1, 1, 1, 1), _grayscale(batch).expand_as(batch), batch)
    return out[0] if single else out


def normalize(
    clips: torch.Tensor,
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
) -> torch.Tensor:
    """(x - mean) / std per channel; uint8 input is first scaled to [0, 1] on its own device."""
    batch, single = _as_batch(to_float(clips))
    mean_t = torch.tensor(mean, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1, 1)
    std_t = torch.tensor(std, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1, 1)
    out = (batch - mean_t) / std_t
    return out[0] if single else out


def random_gain(
    waveform: torch.Tensor, min_db: float = -6.0, max_db: float = 6.0, *, generator: torch.Generator
) -> torch.Tensor:
    """Scale each waveform [B, N] (or [N]) by 10^(g / 20), g ~ U(min_db, max_db) dB."""
    if min_db > max_db:
        raise ValueError(f"min_db ({min_db}) must not exceed max_db ({max_db})")
    batch = waveform.unsqueeze(0) if waveform.dim() == 1 else waveform
    gain_db = _uniform(batch.shape[0], min_db, max_db, generator)
    scale = torch.pow(10.0, gain_db / 20).to(device=batch.device, dtype=batch.dtype)
    out = batch * scale.view(-1, *([1] * (batch.dim() - 1)))
    return out[0] if waveform.dim() == 1 else out


def _band_masks(
    batch: int, length: int, count: int, max_width: int, generator: torch.Generator
) -> torch.Tensor:
    """[B, length] bool: the union of ``count`` bands of width ~ U{0..max_width} at random starts."""
    max_width = min(max_width, length)
    widths = torch.randint(0, max_width + 1, (batch, count), generator=generator)
    starts = (torch.rand(batch, count, generator=generator, dtype=torch.float64)
              * (length - widths + 1)).long()
    index = torch.arange(length).view(1, 1, -1)
    inside = (index >= starts.unsqueeze(-1)) & (index < (starts + widths).unsqueeze(-1))
    return inside.any(dim=1)


def spec_augment(
    log_mel: torch.Tensor,
    num_freq_masks: int = 2,
    max_freq_width: int = 8,
    num_time_masks: int = 2,
    max_time_width: int = 20,
    fill: float | None = None,
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """SpecAugment frequency and time masking on log-mel [B, 1, F, T] (or [1, F, T]).

    Each example gets its own bands; masked cells take ``fill`` or, when None, the example's mean
    log-mel value (0 dB is not silence on a dB scale, so a constant 0 would be a loud artefact).
    """
    single = log_mel.dim() == 3
    batch = log_mel.unsqueeze(0) if single else log_mel
    if batch.dim() != 4:
        raise ValueError(f"log_mel must be [1, F, T] or [B, 1, F, T], got {tuple(log_mel.shape)}")
    n, _, n_freq, n_time = batch.shape
    freq = _band_masks(n, n_freq, num_freq_masks, max_freq_width, generator).to(batch.device)
    time = _band_masks(n, n_time, num_time_masks, max_time_width, generator).to(batch.device)
    masked = freq.view(n, 1, n_freq, 1) | time.view(n, 1, 1, n_time)
    if fill is None:
        value = batch.mean(dim=(1, 2, 3), keepdim=True).expand_as(batch)
    else:
        value = torch.full_like(batch, fill)
    out = torch.where(masked, value, batch)
    return out[0] if single else out




def augment_log_mel(
    log_mel: torch.Tensor, config: AudioAugmentConfig, *, generator: torch.Generator
) -> torch.Tensor:
    """SpecAugment on [B, 1, F, T] or [1, F, T]."""
    return spec_augment(log_mel, config.num_freq_masks, config.max_freq_width, config.num_time_masks,
                        config.max_time_width, generator=generator)

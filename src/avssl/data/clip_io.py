"""Read one training clip from an open reader: video frames cropped on the CPU (uint8) and audio.

Geometry (random resized crop, flip) runs in the loader worker on uint8 so that little crosses to
the GPU; colour, normalisation and log-mel run on the device in batch (avssl.methods.base).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avssl.config.data import VideoAugmentConfig
from avssl.data.transforms import (
    center_crop,
    resize_short_side,
    sample_crop_boxes,
    to_channels_first,
)
from avssl.media import MediaReader

# frames are decoded with their short side at size / DECODE_CROP_RATIO (128 px for a 112 px crop),
# the usual "resize then crop" of video SSL; decoding smaller costs less than resizing later
DECODE_CROP_RATIO = 0.875


def decode_short_side(size: int) -> int:
    return int(round(size / DECODE_CROP_RATIO))


def read_video_clip(
    reader: MediaReader,
    start: float,
    num_frames: int,
    fps: float,
    augment: VideoAugmentConfig,
    generator: torch.Generator | None,
    speed: int = 1,
) -> torch.Tensor:
    """uint8 [3, T, S, S]: `num_frames` frames from `start` at `fps / speed` (every speed-th frame of
    the `fps` grid, i.e. played `speed` times faster), randomly cropped and flipped with `generator`,
    or centre-cropped when `generator` is None (evaluation)."""
    frames = read_frames(reader, start, num_frames, fps / speed, augment.size)
    size = (augment.size, augment.size)
    if generator is None:
        return center_crop(resize_short_side(to_channels_first(frames), augment.size), size).contiguous()
    return random_crop_flip(frames, size, augment, generator)[0]


def random_crop_flip(frames: torch.Tensor, size: tuple[int, int], augment: VideoAugmentConfig,
                     generator: torch.Generator, views: int = 1) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> uint8 [views, 3, T, size]: per view a random resized crop (one box for all
    its frames) and a horizontal flip with probability augment.flip_p. The boxes of all views are drawn
    first (avssl.data.transforms.sample_crop_boxes), then the flips, so a generator gives the same
    views whatever the frames.

    The resize runs on uint8 in the frames' own channels-last layout (antialiased bilinear), which
    torch does ~25x faster than on float: it was most of a cached sample's time.
    """
    boxes = sample_crop_boxes(views, frames.shape[1], frames.shape[2], augment.crop_scale, augment.crop_ratio,
                              generator=generator)
    flips = (torch.rand(views, generator=generator) < augment.flip_p).tolist()
    out = []
    for (top, left, h, w), flip in zip(boxes.tolist(), flips):
        crop = frames[:, top:top + h, left:left + w].permute(0, 3, 1, 2)  # [T, 3, h, w], channels-last view
        if (h, w) != tuple(size):
            crop = F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=True)
        if flip:
            crop = crop.flip(-1)
        out.append(crop.permute(1, 0, 2, 3))  # [3, T, S, S]
    return torch.stack(out).contiguous()


def read_frames(reader: MediaReader, start: float, num_frames: int, fps: float, size: int) -> torch.Tensor:
    """uint8 [num_frames, H, W, 3]: the frames of the `fps` grid from `start`, decoded with their short
    side at decode_short_side(size). The grid has exactly `num_frames` times (media.timing.grid_times)
    and the reader gives one frame per grid time: where the video stream has no frame (before its
    first, past its last) the nearest one stands in, counted in the read's VideoReadInfo, which
    avssl.data.dataset.PaddingCountingReader adds to the sample's `video_padded`. Nothing is padded
    here, so no repeated frame goes uncounted."""
    frames = reader.read_video(start, num_frames / fps, fps=fps, size=decode_short_side(size))
    if frames.shape[0] != num_frames:
        raise RuntimeError(f"{reader.path}: {frames.shape[0]} frames for a grid of {num_frames} "
                           f"from {start:.3f} s at {fps:g} fps (a reader must give one per grid time)")
    return frames


def read_audio_clip(reader: MediaReader, start: float, seconds: float, sample_rate: int) -> torch.Tensor:
    """float32 [round(seconds * sample_rate)]: the audio from `start` (avssl.data.views.audio_at_speed
    plays it faster)."""
    return reader.read_audio(start, seconds, sample_rate=sample_rate)

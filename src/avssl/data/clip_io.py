"""Read one training clip from an open reader: video frames cropped on the CPU (uint8) and audio.

Geometry (random resized crop, flip) runs in the loader worker on uint8 so that little crosses to
the GPU; colour, normalisation and log-mel run on the device in batch (avssl.methods.base).
"""

from __future__ import annotations

import torch

from avssl.data.transforms import (
    VideoAugmentConfig,
    center_crop,
    random_horizontal_flip,
    random_resized_crop,
    resize_short_side,
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
    step_fps = fps / speed
    frames = reader.read_video(start, num_frames / step_fps, fps=step_fps, size=decode_short_side(augment.size))
    if frames.shape[0] != num_frames:
        # the window's end lies past the last frame; the reader repeats no frame, so pad explicitly
        frames = _pad_frames(frames, num_frames, reader.path)
    clip = to_channels_first(frames)
    size = (augment.size, augment.size)
    if generator is None:
        return center_crop(resize_short_side(clip, augment.size), size).contiguous()
    clip = random_resized_crop(clip, size, augment.crop_scale, augment.crop_ratio, generator=generator)
    return random_horizontal_flip(clip, augment.flip_p, generator=generator).contiguous()


def _pad_frames(frames: torch.Tensor, num_frames: int, path: str) -> torch.Tensor:
    if frames.shape[0] == 0:
        from avssl.media import ClipOutsideStreamError

        raise ClipOutsideStreamError(path, "no video frame in the requested window")
    if frames.shape[0] > num_frames:
        return frames[:num_frames]
    last = frames[-1:].expand(num_frames - frames.shape[0], *frames.shape[1:])
    return torch.cat([frames, last])


def read_audio_clip(reader: MediaReader, start: float, seconds: float, sample_rate: int, speed: int = 1) -> torch.Tensor:
    """float32 [round(seconds * sample_rate)]: the audio from `start`, played `speed` times faster.

    Reading `speed * seconds` of audio resampled to `sample_rate / speed` and treating it as
    `sample_rate` audio is the same as speeding up a recording: duration shrinks and pitch rises.
    """
    if speed == 1:
        return reader.read_audio(start, seconds, sample_rate=sample_rate)
    if sample_rate % speed:
        raise ValueError(f"sample_rate {sample_rate} must be divisible by speed {speed}")
    return reader.read_audio(start, seconds * speed, sample_rate=sample_rate // speed)

"""Plain records the media layer returns: what a file holds, and how a read went."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` found in a file. Durations in seconds; sizes in pixels after rotation.

    Times (here and in every read) are on one clock for both modalities: seconds from the
    container's start time (the earliest stream start), so a stream that starts later than the
    container keeps its offset (`video_start`, `audio_start`) and audio and video stay in sync.

    `duration`: for a file with both streams, the time the first of them ends (min of
    `video_start + video_duration` and `audio_start + audio_duration`), so that a window drawn
    inside it never runs past either stream: a 3 s video with 1 s of audio lasts 1 s, a 1-frame
    video with 1 s of audio 0.04 s. With one stream, the container's duration. Each stream's own
    span stays in `video_*` / `audio_*`, and reads accept any window inside the longer one.
    """

    path: str
    duration: float
    has_video: bool
    has_audio: bool
    video_fps: float = 0.0
    width: int = 0
    height: int = 0
    num_frames: int = 0
    audio_sample_rate: int = 0
    audio_channels: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    rotation: int = 0
    video_start: float = 0.0
    audio_start: float = 0.0
    video_duration: float = 0.0
    audio_duration: float = 0.0


@dataclass(frozen=True)
class AudioReadInfo:
    """How a `read_audio` went: zeros stand in for `padded_before` samples at the start of the
    window (before the first audio sample) and `padded_after` at its end (past the stream end)."""

    sample_rate: int
    padded_before: int = 0
    padded_after: int = 0

    @property
    def padded_samples(self) -> int:
        return self.padded_before + self.padded_after


@dataclass(frozen=True)
class VideoReadInfo:
    """How a `read_video` went. `frame_times` [T] are the presentation times of the returned frames
    (seconds, the clip clock of MediaInfo); with `fps`, `padded_frames` grid times fell outside the
    video stream (before its first frame or after its last one) and repeat the nearest frame: the
    stand-ins of video that is not there, counted like AudioReadInfo's zeros."""

    frame_times: torch.Tensor
    padded_frames: int = 0


@dataclass(frozen=True)
class Clip:
    """Both modalities of one window: video uint8 [T, H, W, 3], audio float32 [samples]."""

    video: torch.Tensor
    audio: torch.Tensor
    video_info: VideoReadInfo
    audio_info: AudioReadInfo
    start: float = 0.0
    duration: float = 0.0

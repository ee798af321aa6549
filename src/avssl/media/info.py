"""Plain records the media layer returns: what a file holds, and how a read went."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` found in a file. Durations in seconds; sizes in pixels after rotation."""

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

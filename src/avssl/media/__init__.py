"""The only code that touches encoded media files: probe, read video frames and audio samples."""

from .errors import (
    BackendUnavailableError,
    CannotOpenError,
    ClipOutsideStreamError,
    DecodeError,
    MediaError,
    NoAudioStreamError,
    NoVideoStreamError,
)
from .info import AudioReadInfo, Clip, MediaInfo, VideoReadInfo
from .reader import BACKENDS, MediaReader, probe, read_audio, read_clip, read_video

__all__ = [
    "BACKENDS", "AudioReadInfo", "BackendUnavailableError", "CannotOpenError", "Clip", "ClipOutsideStreamError",
    "DecodeError", "MediaError", "MediaInfo", "MediaReader", "NoAudioStreamError", "NoVideoStreamError",
    "VideoReadInfo", "probe", "read_audio", "read_clip", "read_video",
]

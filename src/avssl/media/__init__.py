"""The only code that touches encoded media files: check, probe, read (frames, samples) and write them."""

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
from .source import MediaSource
from .writer import write_media

__all__ = [
    "BACKENDS", "AudioReadInfo", "BackendUnavailableError", "CannotOpenError", "Clip", "ClipOutsideStreamError",
    "DecodeError", "MediaError", "MediaInfo", "MediaReader", "MediaSource", "NoAudioStreamError",
    "NoVideoStreamError", "VideoReadInfo", "probe", "read_audio", "read_clip", "read_video", "write_media",
]

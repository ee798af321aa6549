"""Typed errors of the media layer. Every message names the file it is about."""

from __future__ import annotations

import os


class MediaError(Exception):
    """A media file could not be used. `path` is the file; `reason` is the short cause."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class CannotOpenError(MediaError):
    """The file does not exist, is not readable, or is not a media container."""


class NoVideoStreamError(MediaError):
    """The container has no video stream."""


class NoAudioStreamError(MediaError):
    """The container has no audio stream."""


class DecodeError(MediaError):
    """The container opened but its packets could not be decoded."""


class ClipOutsideStreamError(MediaError):
    """The requested time window lies outside the stream."""


class BackendUnavailableError(MediaError):
    """The requested decoding backend is unknown or cannot be imported."""

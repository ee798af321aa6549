"""The one interface a decoding backend implements: MediaSource, what MediaReader reads through.

Times in and out are seconds on the clip clock (see MediaInfo). A backend opens its file in its
constructor (raising a MediaError naming the file when it cannot) and is closed by the reader.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from .info import MediaInfo


class MediaSource(Protocol):
    """One open media file as a decoding backend ("pyav", "torchcodec") presents it."""

    name: str  # the backend's name, one of reader.BACKENDS
    path: str  # the file
    # degrees (0, 90, 180, 270) a player turns the stored frames by: 0 until a video frame has been
    # decoded (containers state it as frame side data), and always 0 where the backend does not read it
    rotation: int

    def info(self, check_decode: bool = False) -> MediaInfo:
        """Describe the file from its header; with check_decode, first check that each stream decodes."""
        ...

    def video_frames(self, start: float, end: float) -> tuple[list[float], list[Any], float | None]:
        """Frames shown during [start, end): the one shown at `start` (if any) and every frame with time
        in (start, end), in presentation order. Returns (times, frame handles for to_rgb, the time the
        last frame stops being shown when the window reaches the end of the stream, else None)."""
        ...

    def to_rgb(self, frame: Any, height: int, width: int) -> np.ndarray:
        """uint8 [height, width, 3] RGB of a frame handle from video_frames, as displayed."""
        ...

    def audio_samples(self, start: float, end: float) -> tuple[np.ndarray, float, int]:
        """Mono float32 samples at the native rate covering [start, end) as far as the stream goes:
        (samples [N], time of the first sample, native sample rate)."""
        ...

    def decoded_frames(self, stream_type: str) -> int | None:
        """Frames of `stream_type` ("video" or "audio") decoded since the file was opened, or None
        where the backend does not count them."""
        ...

    def close(self) -> None:
        """Release the file; the source is not used again."""
        ...

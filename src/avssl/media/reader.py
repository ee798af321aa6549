"""Read clips from media files: the MediaReader object and the module-level functions over it.

Clock: every time is in seconds from the container's start time, the same clock for video and
audio (see MediaInfo). Backends: "pyav" (default) and "torchcodec" (optional, imported lazily),
each a MediaSource (source.py), chosen by the `backend` argument or the AVSSL_MEDIA_BACKEND
environment variable.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Literal, overload

import numpy as np
import torch

from .errors import (
    BackendUnavailableError,
    ClipOutsideStreamError,
    NoAudioStreamError,
    NoVideoStreamError,
)
from .info import AudioReadInfo, Clip, MediaInfo, VideoReadInfo
from .source import MediaSource
from .timing import (
    audio_window,
    check_window,
    grid_times,
    output_size,
    select_in_window,
    select_on_grid,
)

log = logging.getLogger(__name__)

BACKENDS = ("pyav", "torchcodec")
ENV_BACKEND = "AVSSL_MEDIA_BACKEND"

Size = int | tuple[int, int] | None


def resolve_backend(path: str, backend: str | None) -> str:
    """The backend name to use: the argument, else $AVSSL_MEDIA_BACKEND, else "pyav"."""
    name = (backend or os.environ.get(ENV_BACKEND) or "pyav").strip().lower()
    if name not in BACKENDS:
        raise BackendUnavailableError(path, f"unknown media backend {name!r}; known: {', '.join(BACKENDS)}")
    return name


def _open_source(path: str, backend: str) -> MediaSource:
    if backend == "pyav":
        from .pyav_backend import PyAVSource

        return PyAVSource(path)
    try:
        from .torchcodec_backend import TorchCodecSource
    except ImportError as err:
        raise BackendUnavailableError(
            path, f"media backend 'torchcodec' cannot be imported ({err}); pip install 'avssl[torchcodec]'"
        ) from err
    return TorchCodecSource(path)


class MediaReader:
    """One open media file; read any number of windows from it, then close it.

    with MediaReader("clip.mp4") as r:
        a = r.read_video(0.0, 1.0, fps=16, size=112)   # uint8 [16, 112, W, 3]
        b = r.read_audio(0.0, 1.0)                      # float32 [16000]

    `info` comes from the container's header; a rotation (display matrix) is known only from a
    decoded frame, so for rotated files `info.rotation` and the displayed width/height are exact
    after the first read_video (or from `probe`, which decodes a frame).
    """

    def __init__(self, path: str | os.PathLike, backend: str | None = None):
        self.path = os.fspath(path)
        self.backend = resolve_backend(self.path, backend)
        self._source: MediaSource = _open_source(self.path, self.backend)
        try:
            self.info: MediaInfo = self._source.info()
        except BaseException:
            self._source.close()
            raise

    def close(self) -> None:
        self._source.close()

    @property
    def decoded_video_frames(self) -> int | None:
        """Video frames decoded since the file was opened (None when the backend does not count).
        A read decodes from the keyframe before its window to its last frame, whatever the file's length."""
        return self._source.decoded_frames("video")

    @property
    def decoded_audio_frames(self) -> int | None:
        """Audio frames (codec packets' worth, e.g. 1024 AAC samples) decoded since open, or None."""
        return self._source.decoded_frames("audio")

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _learn_rotation(self) -> None:
        """Containers state rotation as side data that the decoder attaches to frames; once a
        frame is decoded, make `info` report it (and the width and height as displayed)."""
        rotation = self._source.rotation
        info = self.info
        if rotation == info.rotation:
            return
        w, h = (info.height, info.width) if (rotation - info.rotation) % 180 else (info.width, info.height)
        self.info = dataclasses.replace(info, rotation=rotation, width=w, height=h)

    def _check_start(self, start: float, duration: float) -> None:
        """ValueError for a bad window; ClipOutsideStreamError for one outside every stream of the file."""
        check_window(self.path, start, duration)
        info = self.info
        end = max(info.duration, info.video_start + info.video_duration, info.audio_start + info.audio_duration)
        if start < 0 or (end > 0 and start >= end):
            raise ClipOutsideStreamError(
                self.path, f"window starts at {start:.3f} s, outside the file's [0, {end:.3f}) s"
            )

    def read_video(
        self, start: float, duration: float, fps: float | None = None, size: Size = None,
        return_info: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, VideoReadInfo]:
        """uint8 [T, H, W, 3] RGB frames of [start, start + duration).

        fps=None: every frame whose presentation time lies in the window. fps given: one frame per
        grid time start + k / fps (k = 0, 1, ... while < start + duration), the frame shown at that
        time. size: None = native; int = short side (aspect kept); (H, W) = exactly that.
        With return_info, also a VideoReadInfo (frame times, padded grid times).

        Padding, the same rule at both ends: a grid time before the first frame (a video stream that
        starts late) takes the first frame, one at or after the last frame's end (audio that outlasts
        the video) takes the last frame, also when the whole window lies there (inside the file);
        VideoReadInfo.padded_frames counts them, as AudioReadInfo counts the zeros of read_audio.
        """
        info = self.info
        if not info.has_video:
            raise NoVideoStreamError(self.path, "no video stream")
        self._check_start(start, duration)
        end = start + duration
        grid = grid_times(start, duration, fps) if fps else None
        last = grid[-1] + 1e-3 if grid is not None else end  # include a frame shown exactly at the last grid time
        times, frames, video_end = self._source.video_frames(start, last)
        if grid is not None and not times and start < info.video_start:
            # the window ends before a late video stream starts: its first frame stands in (padded)
            times, frames, video_end = self._source.video_frames(info.video_start, info.video_start + 1e-3)
            times, frames = times[:1], frames[:1]
        self._learn_rotation()
        info = self.info
        times_arr = np.asarray(times, dtype=np.float64)
        padded = 0
        if grid is None:
            pick = select_in_window(times_arr, start, end)
        elif len(times_arr):
            pick, padded = select_on_grid(times_arr, grid, video_end)
        else:
            pick = np.zeros(0, dtype=np.int64)
        if len(pick) == 0:
            if grid is None and len(times_arr) and video_end is None:
                # the window falls between two frames (sparse variable frame rate): legitimately empty
                pass
            else:
                raise ClipOutsideStreamError(self.path, f"no video frame in [{start:.3f}, {end:.3f}) s")
        h, w = output_size(info.height, info.width, size)
        rgb = np.empty((len(pick), h, w, 3), dtype=np.uint8)
        first_row: dict[int, int] = {}  # a frame picked for several grid times is converted once
        for row, i in enumerate(pick.tolist()):
            if i in first_row:
                rgb[row] = rgb[first_row[i]]
            else:
                rgb[row] = self._source.to_rgb(frames[i], h, w)
                first_row[i] = row
        out = torch.from_numpy(rgb)
        if not return_info:
            return out
        return out, VideoReadInfo(frame_times=torch.from_numpy(times_arr[pick]), padded_frames=padded)

    def read_audio(
        self, start: float, duration: float, sample_rate: int = 16000, return_info: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, AudioReadInfo]:
        """float32 [round(duration * sample_rate)] mono audio of [start, start + duration).

        Sample k is the signal at time start + k / sample_rate. Past the end of the stream (or
        before its first sample) the samples are zeros, also for a window wholly past the audio
        of a file whose video runs longer; return_info=True also returns an AudioReadInfo whose
        padded_before / padded_after count them. A window outside the file raises.
        """
        info = self.info
        if not info.has_audio:
            raise NoAudioStreamError(self.path, "no audio stream")
        if sample_rate <= 0:
            raise ValueError(f"{self.path}: sample_rate must be > 0, got {sample_rate}")
        self._check_start(start, duration)
        samples, first_time, native = self._source.audio_samples(start, start + duration)
        out, before, after = audio_window(samples, first_time, native, start, duration, sample_rate)
        if before + after >= len(out) and len(out):
            # inside the file but past the audio (audio shorter than video, or starting later):
            # silence, reported through the padding counts rather than an error mid-epoch
            log.debug("%s: no audio in [%.3f, %.3f) s; returning zeros", self.path, start, start + duration)
        if not return_info:
            return out
        return out, AudioReadInfo(sample_rate=sample_rate, padded_before=before, padded_after=after)

    def read_clip(
        self, start: float, duration: float, fps: float | None = None, size: Size = None,
        sample_rate: int = 16000,
    ) -> Clip:
        """Video and audio of one window (both on the same clock) as a Clip."""
        video, vinfo = self.read_video(start, duration, fps=fps, size=size, return_info=True)
        audio, ainfo = self.read_audio(start, duration, sample_rate=sample_rate, return_info=True)
        return Clip(video=video, audio=audio, video_info=vinfo, audio_info=ainfo, start=start, duration=duration)


def probe(path: str | os.PathLike, backend: str | None = None) -> MediaInfo:
    """Describe a media file (duration, streams, fps, size) after checking each stream decodes.

    Raises CannotOpenError or DecodeError (naming the file) for a file that cannot be used.
    """
    path = os.fspath(path)
    source = _open_source(path, resolve_backend(path, backend))
    try:
        return source.info(check_decode=True)
    finally:
        source.close()


@overload
def read_video(path, start, duration, fps=..., size=..., backend=..., return_info: Literal[False] = ...) -> torch.Tensor: ...
@overload
def read_video(path, start, duration, fps=..., size=..., backend=..., return_info: Literal[True] = ...) -> tuple[torch.Tensor, VideoReadInfo]: ...
def read_video(
    path: str | os.PathLike, start: float, duration: float, fps: float | None = None, size: Size = None,
    backend: str | None = None, return_info: bool = False,
):
    """uint8 [T, H, W, 3] frames of [start, start + duration); see MediaReader.read_video."""
    with MediaReader(path, backend=backend) as reader:
        return reader.read_video(start, duration, fps=fps, size=size, return_info=return_info)


def read_audio(
    path: str | os.PathLike, start: float, duration: float, sample_rate: int = 16000,
    backend: str | None = None, return_info: bool = False,
):
    """float32 [round(duration * sample_rate)] mono samples; see MediaReader.read_audio."""
    with MediaReader(path, backend=backend) as reader:
        return reader.read_audio(start, duration, sample_rate=sample_rate, return_info=return_info)


def read_clip(
    path: str | os.PathLike, start: float, duration: float, fps: float | None = None, size: Size = None,
    sample_rate: int = 16000, backend: str | None = None,
) -> Clip:
    """Video and audio of one window with the file opened once; see MediaReader.read_clip."""
    with MediaReader(path, backend=backend) as reader:
        return reader.read_clip(start, duration, fps=fps, size=size, sample_rate=sample_rate)

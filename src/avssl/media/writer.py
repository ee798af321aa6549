"""Write real encoded media files (video and/or audio) from arrays, through PyAV.

The synthetic world and the tests make their own media with this: nothing is downloaded. The frames
and samples written here are the ground truth the media layer's readers are checked against.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import av
import numpy as np


@dataclass(frozen=True)
class Format:
    """A container with its video and audio codecs. `pix_fmt` is the encoder's input pixel format."""

    container: str
    video_codec: str | None
    audio_codec: str | None
    pix_fmt: str = "yuv420p"
    audio_format: str = "fltp"


# name -> format; the extension of the written file is the name's last part
FORMATS: dict[str, Format] = {
    "mp4": Format("mp4", "libx264", "aac"),
    "mov": Format("mov", "libx264", "aac"),
    "mkv": Format("matroska", "libx264", "aac"),
    "webm": Format("webm", "libvpx-vp9", "libopus", audio_format="flt"),
    "avi": Format("avi", "mjpeg", "pcm_s16le", pix_fmt="yuvj420p", audio_format="s16"),
    "wav": Format("wav", None, "pcm_s16le", audio_format="s16"),
    "flac": Format("flac", None, "flac", audio_format="s16"),
    "ogg": Format("ogg", None, "libopus", audio_format="flt"),
}


Frames = Union[np.ndarray, Iterable[np.ndarray]]


def write_media(
    path: str | os.PathLike,
    frames: Frames | None = None,
    fps: float | Fraction = 25,
    audio: np.ndarray | Iterable[np.ndarray] | None = None,
    sample_rate: int = 16000,
    fmt: str | None = None,
    video_bitrate: int | None = None,
    crf: int | None = 18,
    gop: int | None = None,
    frame_times: np.ndarray | None = None,
    *,
    num_frames: int | None = None,
    frame_size: tuple[int, int] | None = None,
    preset: str = "veryfast",
    rotation: int = 0,
) -> str:
    """Encode `frames` and/or `audio` into one file and return its path.

    frames: uint8 [T, H, W, 3] RGB (H and W even for yuv420p codecs), or any iterable (a generator)
        of uint8 [H, W, 3] frames, encoded one at a time so a long file never sits in memory; then
        `frame_size` (H, W) and `num_frames` may be given: the size otherwise comes from the first
        frame, and a count that differs from what the iterable yields is an error.
    audio: float32 [N] mono or [C, N] in [-1, 1], or an iterable of such chunks (any lengths).
    fmt: a key of FORMATS; by default the file extension.
    frame_times: optional [T] presentation times in seconds (variable frame rate; kept exactly by
        mp4 and mov, rounded by the other containers); by default
        frame i is shown at i / fps.
    gop: keyframe interval in frames (smaller = cheaper seeking); by default the encoder's.
    preset: the x264 speed preset (h264 formats only); "ultrafast" for long, throwaway files.
    rotation: degrees counter-clockwise (a multiple of 90) that a player turns the stored frames
        by, written as the stream's display matrix (mp4 and mov), as phones record portrait video.
    """
    path = os.fspath(path)
    fmt_name, spec = _format_of(path, fmt)
    if frames is None and audio is None:
        raise ValueError(f"{path}: nothing to write (no frames and no audio)")
    if frames is not None and spec.video_codec is None:
        raise ValueError(f"{path}: format {fmt_name!r} holds no video")
    source = _FrameSource(path, frames, num_frames, frame_size, frame_times) if frames is not None else None
    _check_rotation(path, fmt_name, spec, rotation)
    if source is not None:
        _check_frame_size(path, spec, source)
    video = _VideoSettings(fps, video_bitrate, crf, gop, frame_times, preset, rotation)
    _encode_file(path, spec, source, video, audio, sample_rate)
    return path


@dataclass(frozen=True)
class _VideoSettings:
    """How the video stream is encoded: the write_media arguments that only concern it."""

    fps: float | Fraction
    bitrate: int | None
    crf: int | None
    gop: int | None
    frame_times: np.ndarray | None
    preset: str
    rotation: int


def _format_of(path: str, fmt: str | None) -> tuple[str, Format]:
    """(name, Format) of `fmt`, or of the file extension when `fmt` is None."""
    fmt_name = fmt or os.path.splitext(path)[1].lstrip(".").lower()
    if fmt_name not in FORMATS:
        raise ValueError(f"{path}: unknown media format {fmt_name!r}; known: {sorted(FORMATS)}")
    return fmt_name, FORMATS[fmt_name]


def _check_rotation(path: str, fmt_name: str, spec: Format, rotation: int) -> None:
    """A display rotation must be a multiple of 90, and only mp4 and mov store one."""
    if rotation % 90 or (rotation % 360 and spec.container not in ("mp4", "mov")):
        raise ValueError(
            f"{path}: rotation must be a multiple of 90 and needs mp4 or mov, got {rotation} for {fmt_name!r}"
        )


def _check_frame_size(path: str, spec: Format, source: _FrameSource) -> None:
    """h264 in yuv420p subsamples chroma by 2 both ways: the frame size must be even."""
    if spec.video_codec == "libx264" and (source.height % 2 or source.width % 2):
        raise ValueError(
            f"{path}: h264 (yuv420p) needs an even width and height, got {source.width}x{source.height}; "
            "use avi (mjpeg) or webm (vp9) for odd sizes"
        )


def _encode_file(path: str, spec: Format, source: _FrameSource | None, video: _VideoSettings, audio,
                 sample_rate: int) -> None:
    """Open `path` for writing and encode the video (if any) and the audio (if any) into it."""
    with av.open(path, mode="w", format=spec.container) as container:
        vstream = None
        if source is not None:
            vstream = _add_video_stream(container, spec, source, video.fps, video.bitrate, video.crf, video.gop,
                                        video.frame_times, video.preset)
            if video.rotation % 360:
                vstream.set_display_rotation(video.rotation % 360)
        audio_up_to = _audio_pacer(container, spec, audio, sample_rate)
        if vstream is not None:
            _encode_video(container, vstream, source, video.frame_times, video.fps, audio_up_to)
        audio_up_to(math.inf)


def _audio_pacer(container, spec: Format, audio, sample_rate: int) -> Callable[[float], None]:
    """A function audio_up_to(t) that encodes the audio up to time t (s); it does nothing without audio.

    Audio is encoded alongside the video (up to each frame's time) so the file is interleaved like a
    camera's: a reader seeking to t finds both streams near each other.
    """
    audio_steps: Iterator[float] = iter(())
    if audio is not None:
        channels, chunks = _audio_source(audio)
        astream = _add_audio_stream(container, spec, channels, sample_rate)
        audio_steps = _encode_audio(container, astream, spec, channels, chunks, sample_rate)
    audio_time = -math.inf

    def audio_up_to(t: float) -> None:
        nonlocal audio_time
        while audio_time < t:
            audio_time = next(audio_steps, math.inf)

    return audio_up_to


class _FrameSource:
    """The frames to encode, as an array or an iterable, with their size and (if known) count."""

    def __init__(self, path: str, frames: Frames, count: int | None, size: tuple[int, int] | None, times):
        self.path = path
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(f"{path}: frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
            self.head, self.rest = None, iter(frames)
            count, size = len(frames), frames.shape[1:3]
        else:
            self.rest = iter(frames)
            self.head = next(self.rest, None)
            if self.head is None:
                raise ValueError(f"{path}: the frames iterable yielded no frame")
            size = size or self.head.shape[:2]
        self.count = count
        self.height, self.width = (int(v) for v in size)
        if times is not None and count is not None and len(times) != count:
            raise ValueError(f"{path}: {len(times)} frame_times for {count} frames")

    def __iter__(self):
        n = 0
        for frame in itertools.chain([self.head] if self.head is not None else [], self.rest):
            frame = np.asarray(frame)
            if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
                raise ValueError(
                    f"{self.path}: frame {n} is {frame.dtype} {frame.shape}, expected uint8 "
                    f"{(self.height, self.width, 3)}"
                )
            yield frame
            n += 1
        if self.count is not None and n != self.count:
            raise ValueError(f"{self.path}: num_frames={self.count} but the frames iterable yielded {n}")


def _add_video_stream(container, spec, source, fps, bitrate, crf, gop, frame_times, preset):
    h, w = source.height, source.width
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(spec.video_codec, rate=rate)
    stream.width, stream.height = w, h
    stream.pix_fmt = spec.pix_fmt
    time_base = Fraction(1, 90000) if frame_times is not None else 1 / rate
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    options = {}
    if spec.video_codec == "libx264":
        if crf is not None and bitrate is None:
            options["crf"] = str(crf)
        options["preset"] = preset
    if spec.video_codec == "libvpx-vp9":
        options.update({"deadline": "realtime", "cpu-used": "8", "row-mt": "1"})
        if bitrate is None:
            options.update({"crf": str(crf or 30), "b": "0"})
    if spec.video_codec == "mjpeg":
        options["q:v"] = "2"
    if bitrate is not None:
        stream.bit_rate = int(bitrate)
    if gop is not None:
        stream.codec_context.gop_size = int(gop)
    stream.options = options
    return stream


def _audio_source(audio) -> tuple[int, Iterable[np.ndarray]]:
    """(channels, iterable of float32 [C, n] chunks) from an array [N] / [C, N] or an iterable of them."""
    if isinstance(audio, np.ndarray):
        arr = np.atleast_2d(np.asarray(audio, dtype=np.float32))
        return arr.shape[0], [arr]
    chunks = (np.atleast_2d(np.asarray(c, dtype=np.float32)) for c in audio)
    head = next(chunks, None)
    if head is None:
        raise ValueError("the audio iterable yielded no samples")
    return head.shape[0], itertools.chain([head], chunks)


def _add_audio_stream(container, spec, channels, sample_rate):
    if spec.audio_codec == "libopus" and sample_rate != 48000:
        raise ValueError("opus only encodes 48 kHz audio: pass sample_rate=48000 for webm and ogg")
    stream = container.add_stream(spec.audio_codec, rate=sample_rate)
    stream.layout = "mono" if channels == 1 else "stereo"
    return stream


def _encode_video(container, stream, source, frame_times, fps, before_frame):
    """Encode every frame; before_frame(t) is called with each frame's time first."""
    for i, rgb in enumerate(source):
        before_frame(float(frame_times[i]) if frame_times is not None and i < len(frame_times) else i / float(fps))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if frame_times is not None:
            if i >= len(frame_times):
                raise ValueError(f"{source.path}: more frames than the {len(frame_times)} frame_times")
            frame.pts = int(round(float(frame_times[i]) * 90000))
            frame.time_base = stream.time_base
        else:
            frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _blocks(chunks: Iterable[np.ndarray], size: int):
    """The samples of `chunks` ([C, n] each) again as [C, size] blocks (the last one shorter)."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += chunk.shape[1]
        if held >= size:
            joined = np.concatenate(pending, axis=1)
            whole = joined.shape[1] // size * size
            for start in range(0, whole, size):
                yield joined[:, start:start + size]
            pending, held = [joined[:, whole:]], joined.shape[1] - whole
    if held:
        yield np.concatenate(pending, axis=1)


def _encode_audio(container, stream, spec, channels, chunks, sample_rate):
    """Generator: encodes one block per step and yields the time (s) encoded so far."""
    layout = "mono" if channels == 1 else "stereo"
    start = 0
    for block in _blocks(chunks, 1024):
        block = np.clip(block, -1.0, 1.0)
        if spec.audio_format == "s16":
            data = (block * 32767.0).round().astype(np.int16).T.reshape(1, -1)  # packed: interleaved
        elif spec.audio_format == "flt":
            data = np.ascontiguousarray(block.T.reshape(1, -1))
        else:
            data = np.ascontiguousarray(block)  # planar float: one row per channel
        frame = av.AudioFrame.from_ndarray(data, format=spec.audio_format, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        start += block.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
        yield start / sample_rate
    for packet in stream.encode():
        container.mux(packet)

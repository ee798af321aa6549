"""Write real encoded media files (video and/or audio) from arrays, through PyAV.

Tests and the demo world use this to make their own media: nothing is downloaded. The frames and
samples written here are the ground truth the media layer's readers are checked against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

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


def write_media(
    path: str | os.PathLike,
    frames: np.ndarray | None = None,
    fps: float | Fraction = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    fmt: str | None = None,
    video_bitrate: int | None = None,
    crf: int | None = 18,
    gop: int | None = None,
    frame_times: np.ndarray | None = None,
) -> str:
    """Encode `frames` and/or `audio` into one file and return its path.

    frames: uint8 [T, H, W, 3] RGB (H and W even for yuv420p codecs).
    audio: float32 [N] mono or [C, N] in [-1, 1].
    fmt: a key of FORMATS; by default the file extension.
    frame_times: optional [T] presentation times in seconds (variable frame rate; kept exactly by
        mp4 and mov, rounded by the other containers); by default
        frame i is shown at i / fps.
    gop: keyframe interval in frames (smaller = cheaper seeking); by default the encoder's.
    """
    path = os.fspath(path)
    fmt_name = fmt or os.path.splitext(path)[1].lstrip(".").lower()
    if fmt_name not in FORMATS:
        raise ValueError(f"{path}: unknown media format {fmt_name!r}; known: {sorted(FORMATS)}")
    spec = FORMATS[fmt_name]
    if frames is None and audio is None:
        raise ValueError(f"{path}: nothing to write (no frames and no audio)")
    if frames is not None and spec.video_codec is None:
        raise ValueError(f"{path}: format {fmt_name!r} holds no video")

    with av.open(path, mode="w", format=spec.container) as container:
        vstream = astream = None
        if frames is not None:
            vstream = _add_video_stream(container, spec, frames, fps, video_bitrate, crf, gop, frame_times)
        if audio is not None:
            astream = _add_audio_stream(container, spec, audio, sample_rate)
        if vstream is not None:
            _encode_video(container, vstream, frames, frame_times)
        if astream is not None:
            _encode_audio(container, astream, spec, audio, sample_rate)
    return path


def _add_video_stream(container, spec, frames, fps, bitrate, crf, gop, frame_times):
    t, h, w, c = frames.shape
    if c != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
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
        options["preset"] = "veryfast"
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


def _add_audio_stream(container, spec, audio, sample_rate):
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    if spec.audio_codec == "libopus" and sample_rate != 48000:
        raise ValueError("opus only encodes 48 kHz audio: pass sample_rate=48000 for webm and ogg")
    stream = container.add_stream(spec.audio_codec, rate=sample_rate)
    stream.layout = "mono" if audio.shape[0] == 1 else "stereo"
    return stream


def _encode_video(container, stream, frames, frame_times):
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if frame_times is not None:
            frame.pts = int(round(float(frame_times[i]) * 90000))
            frame.time_base = stream.time_base
        else:
            frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _encode_audio(container, stream, spec, audio, sample_rate):
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    chunk = 1024
    for start in range(0, audio.shape[1], chunk):
        block = np.clip(audio[:, start:start + chunk], -1.0, 1.0)
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
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)

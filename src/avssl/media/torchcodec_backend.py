"""Optional decoding backend: torchcodec (needs FFmpeg shared libraries on the system).

Imported only when the backend "torchcodec" is asked for. Stream facts and the clip clock come from
the same PyAV probe as the default backend, so both backends put frames and samples on one clock.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torchcodec.decoders import AudioDecoder, VideoDecoder

from .errors import DecodeError, NoAudioStreamError, NoVideoStreamError
from .info import MediaInfo
from .pyav_backend import PyAVSource
from .source import MediaSource

# torchcodec reports these as RuntimeError/ValueError; they become DecodeError naming the file
_DECODER_ERRORS = (RuntimeError, ValueError, IndexError)


class TorchCodecSource(MediaSource):
    """One file read through torchcodec decoders (created lazily, kept for the reader's life).

    It reports no display rotation (`rotation` stays 0) and does not count decoded frames.
    """

    name = "torchcodec"

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        probe = PyAVSource(self.path)
        try:
            self._info = probe.info()
            self.origin = probe.decoder.origin
            video, audio = probe.decoder.video, probe.decoder.audio
            self._video_index = video.index if video is not None else None
            self._audio_index = audio.index if audio is not None else None
        finally:
            probe.close()
        self.rotation = 0
        self._video: VideoDecoder | None = None
        self._audio: AudioDecoder | None = None

    def close(self) -> None:
        self._video = self._audio = None

    def decoded_frames(self, stream_type: str) -> int | None:
        return None

    def info(self, check_decode: bool = False) -> MediaInfo:
        return self._info

    def _video_decoder(self) -> VideoDecoder:
        if self._video_index is None:
            raise NoVideoStreamError(self.path, "no video stream")
        if self._video is None:
            try:
                self._video = VideoDecoder(self.path, stream_index=self._video_index, dimension_order="NHWC")
            except _DECODER_ERRORS as err:
                raise DecodeError(self.path, f"torchcodec cannot open the video stream ({err})") from err
        return self._video

    def video_frames(self, start: float, end: float) -> tuple[list[float], list, float | None]:
        """Same contract as PyAVSource.video_frames; frame handles are uint8 [H, W, 3] tensors."""
        dec = self._video_decoder()
        meta = dec.metadata
        begin, stop = meta.begin_stream_seconds, meta.end_stream_seconds
        lo = max(start + self.origin, begin)
        hi = min(end + self.origin, stop)
        if hi <= lo:
            return [], [], stop - self.origin
        try:
            batch = dec.get_frames_played_in_range(lo, hi)
        except _DECODER_ERRORS as err:
            raise DecodeError(self.path, f"video decode failed in [{start:.3f}, {end:.3f}) s ({err})") from err
        times = [float(t) - self.origin for t in batch.pts_seconds]
        video_end = stop - self.origin if end + self.origin >= stop else None
        return times, list(batch.data), video_end

    def to_rgb(self, frame: torch.Tensor, height: int, width: int) -> np.ndarray:
        """uint8 [height, width, 3]; resized with antialiased bilinear interpolation when needed."""
        if tuple(frame.shape[:2]) != (height, width):
            x = frame.permute(2, 0, 1)[None].float()
            x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", antialias=True)
            frame = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)
        return frame.numpy()

    def audio_samples(self, start: float, end: float) -> tuple[np.ndarray, float, int]:
        """Same contract as PyAVSource.audio_samples. torchcodec 0.13's AudioDecoder does not seek:
        it decodes from the stream start (backwards) or on from where it stopped, so a window's
        cost grows with its distance (upstream issue meta-pytorch/torchcodec#1448, fixed after 0.13)."""
        if self._audio_index is None:
            raise NoAudioStreamError(self.path, "no audio stream")
        if self._audio is None:
            try:
                self._audio = AudioDecoder(self.path, stream_index=self._audio_index)
            except _DECODER_ERRORS as err:
                raise DecodeError(self.path, f"torchcodec cannot open the audio stream ({err})") from err
        # a little context on both sides for the resampling filter, as the PyAV backend decodes
        lo = max(start - 0.05 + self.origin, self._audio.metadata.begin_stream_seconds or 0.0)
        try:
            samples = self._audio.get_samples_played_in_range(lo, end + 0.05 + self.origin)
        except _DECODER_ERRORS as err:
            raise DecodeError(self.path, f"audio decode failed in [{start:.3f}, {end:.3f}) s ({err})") from err
        # numpy's mean runs on this thread; torch's wakes its worker pool, slow on busy cores
        mono = samples.data.numpy().mean(axis=0, dtype=np.float32)
        return mono, float(samples.pts_seconds) - self.origin, int(samples.sample_rate)

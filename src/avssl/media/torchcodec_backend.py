"""Optional decoding backend: torchcodec (needs FFmpeg shared libraries on the system).

Imported only when the backend "torchcodec" is asked for. Stream facts and the clip clock come from
the same PyAV probe as the default backend, so both backends put frames and samples on one clock.
Rotation: torchcodec 0.13 hands out frames turned as a player shows them and states the angle in its
stream metadata; a torchcodec without that field cannot say whether it turned a frame, so a file whose
frames come out in the other orientation than the stream's is refused (use the pyav backend).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch
from torchcodec.decoders import AudioDecoder, VideoDecoder

from .checks import require_regular_file
from .errors import DecodeError, NoAudioStreamError, NoVideoStreamError
from .info import MediaInfo
from .pyav_audio import channel_names
from .pyav_backend import PyAVSource
from .source import MediaSource
from .timing import downmix

# torchcodec reports these as RuntimeError/ValueError; they become DecodeError naming the file
_DECODER_ERRORS = (RuntimeError, ValueError, IndexError)


class TorchCodecSource(MediaSource):
    """One file read through torchcodec decoders (created lazily, kept for the reader's life).

    `rotation` is torchcodec's (known once the video decoder is open); it does not count decoded frames.
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
            self._channels = channel_names(audio.codec_context.layout) if audio is not None else ()
            self._stored_size = (video.codec_context.height, video.codec_context.width) if video is not None else None
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
        """The PyAV probe's description; with check_decode, the video decoder is opened and the
        rotation it reports (with the width and height as displayed) is filled in."""
        if not check_decode or self._video_index is None:
            return self._info
        self._video_decoder()
        info = self._info
        w, h = (info.height, info.width) if self.rotation % 180 else (info.width, info.height)
        return dataclasses.replace(info, rotation=self.rotation, width=w, height=h)

    def _video_decoder(self) -> VideoDecoder:
        if self._video_index is None:
            raise NoVideoStreamError(self.path, "no video stream")
        if self._video is None:
            require_regular_file(self.path)  # opened lazily: the path may have been swapped since
            try:
                self._video = VideoDecoder(self.path, stream_index=self._video_index, dimension_order="NHWC")
            except _DECODER_ERRORS as err:
                raise DecodeError(self.path, f"torchcodec cannot open the video stream ({err})") from err
            rotation = getattr(self._video.metadata, "rotation", None)
            self.rotation = int(round(rotation)) % 360 if rotation is not None else 0
        return self._video

    def _check_orientation(self, frame: torch.Tensor) -> None:
        """DecodeError when a frame's orientation is not the one `rotation` implies (a torchcodec that
        turns frames without saying by how much): the picture would be turned or stretched."""
        stored_h, stored_w = self._stored_size
        expected = (stored_w, stored_h) if self.rotation % 180 else (stored_h, stored_w)
        if stored_h != stored_w and tuple(frame.shape[:2]) != expected:
            raise DecodeError(self.path, f"torchcodec returned {frame.shape[1]}x{frame.shape[0]} frames for a "
                                         f"{stored_w}x{stored_h} stream with rotation {self.rotation}: it does "
                                         "not report this file's display rotation; use the pyav backend")

    def video_frames(self, start: float, end: float) -> tuple[list[float], list, float | None]:
        """Same contract as PyAVSource.video_frames; frame handles are uint8 [H, W, 3] tensors."""
        dec = self._video_decoder()
        meta = dec.metadata
        begin, stop = meta.begin_stream_seconds, meta.end_stream_seconds
        lo = max(start + self.origin, begin)
        hi = min(end + self.origin, stop)
        times, frames, video_end = [], [], None
        if hi > lo:
            try:
                batch = dec.get_frames_played_in_range(lo, hi)
            except _DECODER_ERRORS as err:
                raise DecodeError(self.path, f"video decode failed in [{start:.3f}, {end:.3f}) s ({err})") from err
            times, frames = [float(t) - self.origin for t in batch.pts_seconds], list(batch.data)
        if end + self.origin >= stop:
            video_end = self._add_last_frame(dec, times, frames)
        if frames:
            self._check_orientation(frames[0])
        return times, frames, video_end

    def _add_last_frame(self, dec: VideoDecoder, times: list[float], frames: list) -> float:
        """Append the stream's last frame unless `times` ends with it (a window past the end shows it;
        torchcodec's stream end can be that frame's start); returns when it stops being shown."""
        try:
            last = dec.get_frame_at(len(dec) - 1)
        except _DECODER_ERRORS as err:
            raise DecodeError(self.path, f"video decode of the last frame failed ({err})") from err
        time = float(last.pts_seconds) - self.origin
        if not times or time > times[-1] + 1e-6:
            times.append(time)
            frames.append(last.data)
        fps = self._info.video_fps
        return time + (float(last.duration_seconds) or (1.0 / fps if fps else 0.0))

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
            require_regular_file(self.path)
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
        # numpy runs on this thread; torch wakes its worker pool, slow on busy cores
        mono = downmix(samples.data.numpy(), self._channels)
        return mono, float(samples.pts_seconds) - self.origin, int(samples.sample_rate)

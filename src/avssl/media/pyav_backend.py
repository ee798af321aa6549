"""The default decoding backend: PyAV (FFmpeg bundled in the `av` wheel)."""

from __future__ import annotations

import os

import av
import numpy as np

from .errors import DecodeError, NoAudioStreamError, NoVideoStreamError
from .info import MediaInfo
from .pyav_audio import assemble, to_mono
from .pyav_decode import PyAVDecoder, rate
from .source import MediaSource
from .timing import TIME_EPS

# decoded audio before the window: covers decoder pre-roll (AAC 1 frame, Opus 80 ms) and resampling
AUDIO_PREROLL = 0.3
# frames whose timestamps probe checks run forward (2 s at 25 fps): enough to catch a broken muxer
PROBE_SCAN_FRAMES = 50


class PyAVSource(MediaSource):
    """One open container read through PyAV: the MediaSource over a PyAVDecoder."""

    name = "pyav"

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.decoder = PyAVDecoder(self.path)
        self.rotation = 0

    def close(self) -> None:
        self.decoder.close()

    def decoded_frames(self, stream_type: str) -> int | None:
        return self.decoder.decoded.get(stream_type, 0)

    # --- description -------------------------------------------------------------------------
    def info(self, check_decode: bool = False) -> MediaInfo:
        """Describe the file; with check_decode, also decode the first frame of each stream and check
        that the first video frames' timestamps run forward."""
        d = self.decoder
        c, v, a = d.container, d.video, d.audio
        total = c.duration / av.time_base if c.duration else 0.0
        v_dur, a_dur = d.stream_duration(v, total), d.stream_duration(a, total)
        v_end, a_end = d.stream_start(v) + v_dur, d.stream_start(a) + a_dur
        if v is not None and a is not None and min(v_end, a_end) > 0:
            total = min(v_end, a_end)  # the span both streams cover (MediaInfo.duration)
        elif not total:
            total = max(v_end, a_end)
        if check_decode:
            self._check_decodes()
        fields: dict = {}
        if v is not None:
            fps = rate(v.average_rate) or rate(v.guessed_rate) or rate(v.base_rate)
            w, h = v.codec_context.width, v.codec_context.height
            if self.rotation % 180:
                w, h = h, w
            fields.update(
                video_fps=fps, width=w, height=h, video_codec=v.codec_context.name,
                num_frames=v.frames or (round(v_dur * fps) if fps else 0), rotation=self.rotation,
                video_start=d.stream_start(v), video_duration=v_dur,
            )
        if a is not None:
            fields.update(
                audio_sample_rate=a.codec_context.sample_rate, audio_channels=a.codec_context.channels,
                audio_codec=a.codec_context.name, audio_start=d.stream_start(a), audio_duration=a_dur,
            )
        return MediaInfo(path=self.path, duration=total, has_video=v is not None, has_audio=a is not None, **fields)

    def _check_decodes(self) -> None:
        d = self.decoder
        rewind = False
        for stream in (d.video, d.audio):
            if stream is None:
                continue
            if rewind:
                d.seek(stream, d.stream_start(stream))
            rewind = True
            gen = d.decode(stream)
            head = next(gen, None)
            if head is None:
                gen.close()
                raise DecodeError(self.path, f"{stream.type} stream holds no decodable frame")
            if stream is d.video:
                self.rotation = int(round(getattr(head[1], "rotation", 0) or 0)) % 360
                self._check_monotonic(head[0], gen)
            gen.close()

    def _check_monotonic(self, first_time: float, frames) -> None:
        """DecodeError when the presentation times of the first PROBE_SCAN_FRAMES frames go back.

        A full scan would decode the whole file; reads check every window they decode as well."""
        last = first_time
        for _, (time, _frame) in zip(range(PROBE_SCAN_FRAMES), frames):
            if time < last - TIME_EPS:
                raise DecodeError(self.path, f"video timestamps go backwards: {time:.3f} s after {last:.3f} s")
            last = max(last, time)

    # --- reading -----------------------------------------------------------------------------
    def video_frames(self, start: float, end: float) -> tuple[list[float], list, float | None]:
        """Frames shown during [start, end): the one shown at `start` (if any) and every frame
        with time in (start, end). Returns (times, frame handles, video end time or None)."""
        if self.decoder.video is None:
            raise NoVideoStreamError(self.path, "no video stream")
        times, frames, prev = [], [], None
        video_end = None
        gen = self.decoder.frames_from(self.decoder.video, start)
        try:
            for time, frame in gen:
                if time >= end - TIME_EPS:
                    break
                if frames and time < times[-1] - TIME_EPS:
                    raise DecodeError(self.path, f"video timestamps go backwards: {time:.3f} s after {times[-1]:.3f} s")
                if frames and time <= times[-1] + TIME_EPS:
                    continue  # duplicate timestamp (broken muxers): keep the first
                if time <= start + TIME_EPS:
                    prev = (time, frame)
                    continue
                if prev is not None:
                    times.append(prev[0]), frames.append(prev[1])
                    prev = None
                times.append(time), frames.append(frame)
            else:
                video_end = self._end_of_last(times, frames, prev)
        finally:
            gen.close()
        if prev is not None:
            times.insert(0, prev[0]), frames.insert(0, prev[1])
        if frames:
            self.rotation = int(round(getattr(frames[0], "rotation", 0) or 0)) % 360
        return times, frames, video_end

    def _end_of_last(self, times, frames, prev) -> float | None:
        last_t, last_f = (times[-1], frames[-1]) if frames else (prev if prev else (None, None))
        if last_f is None:
            return None
        dur = float(last_f.duration * last_f.time_base) if last_f.duration else 0.0
        fps = rate(self.decoder.video.average_rate or self.decoder.video.guessed_rate)
        return last_t + (dur or (1.0 / fps if fps else 0.0))

    def to_rgb(self, frame, height: int, width: int) -> np.ndarray:
        """uint8 [height, width, 3] RGB of a frame handle, scaled by swscale, rotation applied."""
        k = (self.rotation // 90) % 4
        h, w = (width, height) if k % 2 else (height, width)
        # threads=1: swscale's default (one thread per core) was 5x slower per frame when the
        # cores are busy (decoding, other workers); one frame is too little work to split
        if (h, w) == (frame.height, frame.width):
            rgb = frame.to_ndarray(format="rgb24", threads=1)
        else:
            rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA", threads=1).to_ndarray()
        return np.rot90(rgb, k) if k else rgb

    def audio_samples(self, start: float, end: float) -> tuple[np.ndarray, float, int]:
        """Mono float32 samples at the native rate covering [start, end) as far as the stream goes,
        with the time of their first sample: (samples [N], first_time, native_rate)."""
        stream = self.decoder.audio
        if stream is None:
            raise NoAudioStreamError(self.path, "no audio stream")
        native = stream.codec_context.sample_rate
        tick = float(stream.time_base)
        chunks, times = [], []
        gen = self.decoder.frames_from(stream, start - AUDIO_PREROLL)
        try:
            for time, frame in gen:
                if time >= end + 0.05:
                    break
                native = frame.sample_rate or native
                chunks.append(to_mono(frame))
                times.append(time)
        finally:
            gen.close()
        if not chunks:
            return np.zeros(0, np.float32), max(start, 0.0), native
        return assemble(chunks, times, native, tick)

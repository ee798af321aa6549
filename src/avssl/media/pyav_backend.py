"""The default decoding backend: PyAV (FFmpeg bundled in the `av` wheel)."""

from __future__ import annotations

import logging
import math
import os

import av
import numpy as np

from .errors import CannotOpenError, DecodeError, NoAudioStreamError, NoVideoStreamError
from .info import MediaInfo
from .timing import TIME_EPS, anchor_time

log = logging.getLogger(__name__)

# decoded audio before the window: covers decoder pre-roll (AAC 1 frame, Opus 80 ms) and resampling
AUDIO_PREROLL = 0.3
# if a seek lands after the wanted time, seek again this much earlier (doubling) until it does not
SEEK_BACKOFF = 1.0
# packets allowed to fail right after a seek before the stream counts as undecodable
MAX_ERRORS_AFTER_SEEK = 8
# frames whose timestamps probe checks run forward (2 s at 25 fps): enough to catch a broken muxer
PROBE_SCAN_FRAMES = 50


def _open(path: str) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise CannotOpenError(path, "no such file")
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise CannotOpenError(path, f"not a readable media container ({err})") from err


def _rate(value) -> float:
    return float(value) if value else 0.0


class PyAVSource:
    """One open container. Times in and out are seconds on the clip clock (see MediaInfo)."""

    name = "pyav"

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.container = _open(self.path)
        try:
            self.video = next((s for s in self.container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)), None)
            self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
            if self.video is None and self.audio is None:
                raise CannotOpenError(self.path, "no video or audio stream")
            if self.video is not None:
                self.video.thread_type = "SLICE"
            start = self.container.start_time
            self.origin = start / av.time_base if start is not None else 0.0
            self.rotation = 0
            # frames decoded per stream type since open: lets tests check that a seek decoded only
            # from the keyframe before the window, not from the start of the file
            self.decoded = {"video": 0, "audio": 0}
        except BaseException:
            self.container.close()
            raise

    def close(self) -> None:
        self.container.close()

    # --- description -------------------------------------------------------------------------
    def _stream_start(self, stream) -> float:
        if stream is None or stream.start_time is None:
            return 0.0
        return float(stream.start_time * stream.time_base) - self.origin

    def _stream_duration(self, stream, total: float) -> float:
        if stream is None:
            return 0.0
        if stream.duration:
            return float(stream.duration * stream.time_base)
        return max(0.0, total - self._stream_start(stream))

    def info(self, check_decode: bool = False) -> MediaInfo:
        """Describe the file; with check_decode, also decode the first frame of each stream and check
        that the first video frames' timestamps run forward."""
        c, v, a = self.container, self.video, self.audio
        total = c.duration / av.time_base if c.duration else 0.0
        v_dur, a_dur = self._stream_duration(v, total), self._stream_duration(a, total)
        if not total:
            total = max(self._stream_start(v) + v_dur, self._stream_start(a) + a_dur)
        if check_decode:
            self._check_decodes()
        fields: dict = {}
        if v is not None:
            fps = _rate(v.average_rate) or _rate(v.guessed_rate) or _rate(v.base_rate)
            w, h = v.codec_context.width, v.codec_context.height
            if self.rotation % 180:
                w, h = h, w
            fields.update(
                video_fps=fps, width=w, height=h, video_codec=v.codec_context.name,
                num_frames=v.frames or (round(v_dur * fps) if fps else 0), rotation=self.rotation,
                video_start=self._stream_start(v), video_duration=v_dur,
            )
        if a is not None:
            fields.update(
                audio_sample_rate=a.codec_context.sample_rate, audio_channels=a.codec_context.channels,
                audio_codec=a.codec_context.name, audio_start=self._stream_start(a), audio_duration=a_dur,
            )
        return MediaInfo(path=self.path, duration=total, has_video=v is not None, has_audio=a is not None, **fields)

    def _check_decodes(self) -> None:
        rewind = False
        for stream in (self.video, self.audio):
            if stream is None:
                continue
            if rewind:
                self._seek(stream, self._stream_start(stream))
            rewind = True
            gen = self._decode(stream)
            head = next(gen, None)
            if head is None:
                gen.close()
                raise DecodeError(self.path, f"{stream.type} stream holds no decodable frame")
            if stream is self.video:
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

    # --- decoding ----------------------------------------------------------------------------
    def _seek(self, stream, t: float) -> None:
        ts = t + self.origin
        if stream.start_time is not None:
            ts = max(ts, float(stream.start_time * stream.time_base))
        try:
            self.container.seek(math.floor(ts / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError as err:
            log.debug("%s: seek to %.3f s failed (%s); decoding from the start", self.path, t, err)
            self.container.seek(0)

    def _frames_from(self, stream, t: float):
        """Decoded frames of `stream`, starting at or before clip time t, as (time, frame) in
        presentation order. When the demuxer's seek lands late (MPEG-PS seeks by a timestamp
        search), seek again earlier, doubling the step; past the stream start, reopen the file and
        decode from its beginning."""
        first_time = self._stream_start(stream)
        back = 0.0
        while True:
            seek_to = t - back
            if seek_to > first_time - SEEK_BACKOFF:
                self._seek(stream, seek_to)
            else:
                stream = self._reopen(stream)
            frames = self._decode(stream)
            head = next(frames, None)
            if head is None:
                return
            landed = head[0]
            if landed <= t + TIME_EPS or landed <= first_time + TIME_EPS or seek_to <= first_time - SEEK_BACKOFF:
                yield head
                yield from frames
                return
            frames.close()
            back = SEEK_BACKOFF if back == 0 else back * 2
            log.debug("%s: seek to %.3f s landed at %.3f s; seeking %.1f s earlier", self.path, t, landed, back)

    def _reopen(self, stream):
        """Open the file again (a fresh demuxer at the very start); returns the same stream in it."""
        index = stream.index
        v_index = self.video.index if self.video is not None else None
        a_index = self.audio.index if self.audio is not None else None
        self.container.close()
        self.container = _open(self.path)
        by_index = {s.index: s for s in self.container.streams}
        self.video = by_index.get(v_index) if v_index is not None else None
        self.audio = by_index.get(a_index) if a_index is not None else None
        if self.video is not None:
            self.video.thread_type = "SLICE"
        if index not in by_index:
            raise CannotOpenError(self.path, f"stream {index} is missing when the file is opened again")
        return by_index[index]

    def _decode(self, stream):
        """(time, frame) pairs from the current position. Packets that fail to decode right after
        a seek are skipped (decoders without their headers or references, e.g. Vorbis in Ogg);
        a failure once frames have come out is a DecodeError."""
        last, errors = None, 0
        for packet in self.container.demux(stream):
            if packet.size == 0 and packet.pts is not None:
                continue  # empty packets (Ogg): nothing to decode; the end-of-stream flush has no pts
            try:
                frames = packet.decode()
            except av.FFmpegError as err:
                errors += 1
                if last is not None or errors > MAX_ERRORS_AFTER_SEEK:
                    raise DecodeError(
                        self.path, f"{stream.type} decode failed near {last or 0:.3f} s ({err})"
                    ) from err
                continue
            self.decoded[stream.type] = self.decoded.get(stream.type, 0) + len(frames)
            for frame in frames:
                if frame.pts is None:
                    if last is None:
                        continue
                    time = last + (1.0 / _rate(stream.average_rate or stream.guessed_rate or 25))
                else:
                    time = float(frame.pts * frame.time_base) - self.origin
                last = time
                yield time, frame

    def video_frames(self, start: float, end: float) -> tuple[list[float], list, float | None]:
        """Frames shown during [start, end): the one shown at `start` (if any) and every frame
        with time in (start, end). Returns (times, frame handles, video end time or None)."""
        if self.video is None:
            raise NoVideoStreamError(self.path, "no video stream")
        times, frames, prev = [], [], None
        video_end = None
        gen = self._frames_from(self.video, start)
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
        fps = _rate(self.video.average_rate or self.video.guessed_rate)
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
        if self.audio is None:
            raise NoAudioStreamError(self.path, "no audio stream")
        rate = self.audio.codec_context.sample_rate
        tick = float(self.audio.time_base)
        chunks, times = [], []
        gen = self._frames_from(self.audio, start - AUDIO_PREROLL)
        try:
            for time, frame in gen:
                if time >= end + 0.05:
                    break
                rate = frame.sample_rate or rate
                chunks.append(_mono(frame))
                times.append(time)
        finally:
            gen.close()
        if not chunks:
            return np.zeros(0, np.float32), max(start, 0.0), rate
        return _assemble(chunks, times, rate, tick)


def _mono(frame) -> np.ndarray:
    """float32 [N] mono (channel mean) of an audio frame in any sample format."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / 32768.0
    elif arr.dtype == np.int32:
        arr = arr.astype(np.float32) / 2147483648.0
    elif arr.dtype == np.uint8:
        arr = (arr.astype(np.float32) - 128.0) / 128.0
    if arr.shape[0] == 1:  # mono: skip the mean (called per 1024-sample frame, its overhead showed)
        return arr[0].astype(np.float32, copy=False)
    return arr.astype(np.float32, copy=False).mean(axis=0)


def _assemble(chunks: list[np.ndarray], times: list[float], rate: int, tick: float) -> tuple[np.ndarray, float, int]:
    """Join decoded frames into one buffer: contiguous runs keep their sample count (timestamps
    may be rounded), a real gap or jump in the timestamps starts a new run placed by its time."""
    tolerance = max(tick, 1.0 / rate) + 1e-3
    runs, run = [], [0]
    for i in range(1, len(chunks)):
        expected = times[i - 1] + len(chunks[i - 1]) / rate
        if abs(times[i] - expected) > tolerance:
            runs.append(run)
            run = []
        run.append(i)
    runs.append(run)
    anchors = [anchor_time([times[i] for i in r], [len(chunks[i]) for i in r], rate, tick) for r in runs]
    first = anchors[0]
    placed = []
    for r, anchor in zip(runs, anchors):
        data = np.concatenate([chunks[i] for i in r])
        placed.append((round((anchor - first) * rate), data))
    total = max(off + len(d) for off, d in placed)
    out = np.zeros(total, np.float32) if len(placed) > 1 else placed[0][1]
    if len(placed) > 1:
        for off, d in placed:
            if off < 0:
                d, off = d[-off:], 0
            out[off:off + len(d)] = d
    return out, first, rate

"""Seeking and decoding one container through PyAV: (time, frame) pairs on the clip clock.

PyAVDecoder copes with what real files do after a seek: demuxers that land late, decoders that fail
on the first packets, frames without timestamps. PyAVSource (pyav_backend) builds windows on it.
"""

from __future__ import annotations

import logging
import math

import av

from .checks import require_regular_file
from .errors import CannotOpenError, DecodeError
from .timing import TIME_EPS

log = logging.getLogger(__name__)

# if a seek lands after the wanted time, seek again this much earlier (doubling) until it does not
SEEK_BACKOFF = 1.0
# packets allowed to fail right after a seek before the stream counts as undecodable
MAX_ERRORS_AFTER_SEEK = 8


def open_container(path: str) -> av.container.InputContainer:
    """The file opened for reading; CannotOpenError when it is missing, not a regular file (a FIFO or
    device would block the open) or not a media container."""
    require_regular_file(path)
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise CannotOpenError(path, f"not a readable media container ({err})") from err


def rate(value) -> float:
    """A stream's frame rate (a Fraction or None) as a float; 0.0 when unknown."""
    return float(value) if value else 0.0


class PyAVDecoder:
    """One open container with its first video stream (cover art aside) and first audio stream.

    `origin` is the container's start time: clip time t is container time t + origin.
    """

    def __init__(self, path: str):
        self.path = path
        self.container = open_container(self.path)
        try:
            self.video = next((s for s in self.container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)), None)
            self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
            if self.video is None and self.audio is None:
                raise CannotOpenError(self.path, "no video or audio stream")
            if self.video is not None:
                self.video.thread_type = "SLICE"
            start = self.container.start_time
            self.origin = start / av.time_base if start is not None else 0.0
            # frames decoded per stream type since open: lets tests check that a seek decoded only
            # from the keyframe before the window, not from the start of the file
            self.decoded = {"video": 0, "audio": 0}
        except BaseException:
            self.container.close()
            raise

    def close(self) -> None:
        self.container.close()

    def stream_start(self, stream) -> float:
        """Clip time of the stream's first frame (0.0 for no stream or an unknown start)."""
        if stream is None or stream.start_time is None:
            return 0.0
        return float(stream.start_time * stream.time_base) - self.origin

    def stream_duration(self, stream, total: float) -> float:
        """The stream's duration (s): from its header, else from the container's `total`."""
        if stream is None:
            return 0.0
        if stream.duration:
            return float(stream.duration * stream.time_base)
        return max(0.0, total - self.stream_start(stream))

    def seek(self, stream, t: float) -> None:
        """Seek `stream` to the keyframe at or before clip time t (to the file start if that fails)."""
        ts = t + self.origin
        if stream.start_time is not None:
            ts = max(ts, float(stream.start_time * stream.time_base))
        try:
            self.container.seek(math.floor(ts / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError as err:
            log.debug("%s: seek to %.3f s failed (%s); decoding from the start", self.path, t, err)
            self.container.seek(0)

    def frames_from(self, stream, t: float):
        """Decoded frames of `stream`, starting at or before clip time t, as (time, frame) in
        presentation order. When the demuxer's seek lands late (MPEG-PS seeks by a timestamp
        search), seek again earlier, doubling the step; at or before the stream start, reopen the
        file and decode from its beginning (a decoder flushed by a seek to the start does not give
        back the first samples a fresh one gives: AAC's first frame came out up to 0.04 off)."""
        first_time = self.stream_start(stream)
        back = 0.0
        while True:
            seek_to = t - back
            if seek_to > first_time + TIME_EPS:
                self.seek(stream, seek_to)
            else:
                stream = self._reopen(stream)
            frames = self.decode(stream)
            head = next(frames, None)
            if head is None:
                return
            landed = head[0]
            if landed <= t + TIME_EPS or landed <= first_time + TIME_EPS or seek_to <= first_time + TIME_EPS:
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
        self.container = open_container(self.path)
        by_index = {s.index: s for s in self.container.streams}
        self.video = by_index.get(v_index) if v_index is not None else None
        self.audio = by_index.get(a_index) if a_index is not None else None
        if self.video is not None:
            self.video.thread_type = "SLICE"
        if index not in by_index:
            raise CannotOpenError(self.path, f"stream {index} is missing when the file is opened again")
        return by_index[index]

    def _packet_time(self, packet, last: float | None) -> str:
        """Where a packet lies, for an error message: its own time, else the last good frame's."""
        if packet.pts is not None and packet.time_base is not None:
            return f"at {float(packet.pts * packet.time_base) - self.origin:.3f} s"
        return f"after {last:.3f} s" if last is not None else "at an unknown time (the packet has no timestamp)"

    def decode(self, stream):
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
                    where = self._packet_time(packet, last)
                    raise DecodeError(self.path, f"{stream.type} decode failed {where} ({err})") from err
                continue
            self.decoded[stream.type] = self.decoded.get(stream.type, 0) + len(frames)
            for frame in frames:
                if frame.pts is None:
                    if last is None:
                        continue
                    time = last + (1.0 / rate(stream.average_rate or stream.guessed_rate or 25))
                else:
                    time = float(frame.pts * frame.time_base) - self.origin
                last = time
                yield time, frame

"""Per-video clip sampler over plain arrays: synchronised pairs and AVTS hard negatives.

Map-style: every method takes (index, epoch[, draw]) and draws from `rng_for(seed, epoch, index,
stream, draw)`, so the result does not depend on the worker, the rank, the order of calls or a resume.
"""

from __future__ import annotations

import numpy as np

from avssl.data.sampling.windows import (
    ClipPair,
    WindowSpec,
    hard_audio_fits,
    hard_audio_start,
    rng_for,
    sync_start,
)
from avssl.data.streams import SampleStream


def as_durations(durations: np.ndarray, name: str = "durations") -> np.ndarray:
    """Validate a 1-D array of file durations in seconds (finite, >= 0); returns float64 [N]."""
    array = np.asarray(durations, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {array[bad[0]]!r} is not a finite duration >= 0")
    return array


def per_file_array(values: np.ndarray | None, length: int, name: str, dtype: type, default) -> np.ndarray:
    """`values` as a 1-D array with one entry per file (`length`), or `default` when `values` is None."""
    if values is None:
        return default
    array = np.asarray(values, dtype=dtype)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) like durations, got {array.shape}")
    return array


class ClipSampler:
    """Clip windows for video i of a collection given as arrays (one entry per file).

    durations: float seconds [N]; has_audio: bool [N] (default all True).
    min_offset / max_offset bound |audio_start - video_start| of hard negatives (seconds), the
    distance between the starts of the in-sync and the shifted audio window; max_offset None means as
    far as the file allows.
    """

    def __init__(
        self,
        durations: np.ndarray,
        spec: WindowSpec,
        *,
        has_audio: np.ndarray | None = None,
        seed: int = 0,
        min_offset: float = 0.5,
        max_offset: float | None = None,
    ) -> None:
        self.durations = as_durations(durations)
        n = len(self.durations)
        self.has_audio = per_file_array(has_audio, n, "has_audio", bool, np.ones(n, dtype=bool))
        if min_offset < 0 or (max_offset is not None and max_offset < min_offset):
            raise ValueError(f"need 0 <= min_offset <= max_offset, got {min_offset}, {max_offset}")
        self.spec = spec
        self.seed = int(seed)
        self.min_offset = float(min_offset)
        self.max_offset = None if max_offset is None else float(max_offset)

    def __len__(self) -> int:
        return len(self.durations)

    def sync_pair(self, index: int, epoch: int, draw: int = 0) -> ClipPair:
        """Video and audio windows of file `index` starting at the same instant (`draw`: which of the
        file's samples of the epoch)."""
        duration = self._duration_with_audio(index)
        rng = rng_for(self.seed, epoch, index, SampleStream.SYNC, draw)
        start = self._naming_video(index, sync_start, self.spec, duration, rng)
        return ClipPair(index, start, index, start)

    def can_hard_negative(self, index: int) -> bool:
        """Whether some video window of file `index` has a hard negative (the file is long enough)."""
        self._check_index(index)
        return hard_audio_fits(self.spec, float(self.durations[index]), self.min_offset, self.max_offset)

    def hard_negative(self, index: int, epoch: int, video_start: float, draw: int = 0) -> float | None:
        """Start of the hard-negative audio of the video window at `video_start` of file `index`:
        |audio start - video_start| in [min_offset, max_offset], inside the file; None when no start is
        that far from this window."""
        duration = self._duration_with_audio(index)
        rng = rng_for(self.seed, epoch, index, SampleStream.HARD_NEGATIVE, draw)
        return hard_audio_start(self.spec, duration, video_start, rng, self.min_offset, self.max_offset)

    def _duration_with_audio(self, index: int) -> float:
        self._check_index(index)
        if not self.has_audio[index]:
            raise ValueError(f"video {index} has no audio: no audio-visual pair can be drawn from it")
        return float(self.durations[index])

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.durations):
            raise IndexError(f"video index {index} out of range for {len(self.durations)} videos")

    @staticmethod
    def _naming_video(index: int, fn, *args):
        # name the video in the error: the window functions only know durations
        try:
            return fn(*args)
        except ValueError as error:
            raise ValueError(f"video {index}: {error}") from error

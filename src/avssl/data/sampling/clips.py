"""Per-video clip sampler over plain arrays: synchronised pairs, AVTS hard and easy negatives, windows.

Map-style: every method takes (index, epoch) and draws from `rng_for(seed, epoch, index, stream)`,
so the result does not depend on the worker, the rank, the order of calls or a resume.
"""

from __future__ import annotations

import numpy as np

from avssl.data.sampling.windows import (
    STREAM_EASY_NEGATIVE,
    STREAM_HARD_NEGATIVE,
    STREAM_SYNC,
    STREAM_WINDOWS,
    ClipPair,
    WindowSpec,
    offset_fits,
    offset_pair_starts,
    rng_for,
    start_anywhere,
    sync_start,
    window_starts,
)

# Tries at picking a random other video before falling back to listing all candidates.
_EASY_TRIES = 32


def as_durations(durations: np.ndarray, name: str = "durations") -> np.ndarray:
    """Validate a 1-D array of file durations in seconds (finite, >= 0); returns float64 [N]."""
    array = np.asarray(durations, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {array[bad[0]]!r} is not a finite duration >= 0")
    return array


def as_aligned(values: np.ndarray | None, length: int, name: str, dtype: type, default) -> np.ndarray:
    """A 1-D array of `length` items (the default filled in when `values` is None)."""
    if values is None:
        return default
    array = np.asarray(values, dtype=dtype)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) like durations, got {array.shape}")
    return array


class ClipSampler:
    """Clip windows for video i of a collection given as arrays (one entry per file).

    durations: float seconds [N]; has_audio: bool [N] (default all True); groups: int [N], the
    source or movie id (default: every file its own group). Easy negatives never come from the
    same group, since clips of one source are not true negatives of each other.
    min_offset / max_offset bound |audio_start - video_start| of hard negatives (seconds);
    max_offset None means as far as the file allows.
    """

    def __init__(
        self,
        durations: np.ndarray,
        spec: WindowSpec,
        *,
        has_audio: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        seed: int = 0,
        min_offset: float = 0.5,
        max_offset: float | None = None,
    ) -> None:
        self.durations = as_durations(durations)
        n = len(self.durations)
        self.has_audio = as_aligned(has_audio, n, "has_audio", bool, np.ones(n, dtype=bool))
        self.groups = as_aligned(groups, n, "groups", np.int64, np.arange(n, dtype=np.int64))
        if min_offset < 0 or (max_offset is not None and max_offset < min_offset):
            raise ValueError(f"need 0 <= min_offset <= max_offset, got {min_offset}, {max_offset}")
        self.spec = spec
        self.seed = int(seed)
        self.min_offset = float(min_offset)
        self.max_offset = None if max_offset is None else float(max_offset)

    def __len__(self) -> int:
        return len(self.durations)

    def sync_pair(self, index: int, epoch: int, draw: int = 0, spec: WindowSpec | None = None) -> ClipPair:
        """Video and audio windows of file `index` starting at the same instant.

        Every method takes an optional `spec` that replaces the sampler's for this draw, e.g.
        `self.spec.at_speed(s)` for the longer source window of a clip played s times faster.
        """
        duration = self._duration_with_audio(index)
        rng = rng_for(self.seed, epoch, index, STREAM_SYNC, draw)
        start = self._call(index, sync_start, spec or self.spec, duration, rng)
        return ClipPair(index, start, index, start)

    def can_hard_negative(self, index: int, spec: WindowSpec | None = None) -> bool:
        """Whether file `index` is long enough for an offset of at least `min_offset`."""
        self._check_index(index)
        return offset_fits(spec or self.spec, float(self.durations[index]), self.min_offset, self.max_offset)

    def hard_negative(self, index: int, epoch: int, draw: int = 0, spec: WindowSpec | None = None) -> ClipPair:
        """Out-of-sync pair from file `index`: |offset| in [min_offset, max_offset], both inside."""
        duration = self._duration_with_audio(index)
        rng = rng_for(self.seed, epoch, index, STREAM_HARD_NEGATIVE, draw)
        video_start, audio_start = self._call(
            index, offset_pair_starts, spec or self.spec, duration, rng, self.min_offset, self.max_offset
        )
        return ClipPair(index, video_start, index, audio_start)

    def easy_negative(self, index: int, epoch: int, draw: int = 0, spec: WindowSpec | None = None) -> ClipPair:
        """Video window of file `index`, audio window of another file with audio from another group."""
        self._check_index(index)
        spec = spec or self.spec
        rng = rng_for(self.seed, epoch, index, STREAM_EASY_NEGATIVE, draw)
        other = self._other_video(index, rng, float(spec.audio_duration))
        fps = spec.fps
        video_start = self._call(index, start_anywhere, spec.video_duration,
                                 float(self.durations[index]), rng, fps)
        audio_start = self._call(other, start_anywhere, float(spec.audio_duration),
                                 float(self.durations[other]), rng, fps)
        return ClipPair(index, video_start, other, audio_start)

    def windows(
        self, index: int, epoch: int, count: int, min_gap: float = 0.0, draw: int = 0,
        spec: WindowSpec | None = None,
    ) -> np.ndarray:
        """`count` sorted clip starts in file `index`, starts at least span + min_gap apart.

        For ordering tasks and within-video negatives. Returns float64 [count] (seconds).
        """
        self._check_index(index)
        spec = spec or self.spec
        rng = rng_for(self.seed, epoch, index, STREAM_WINDOWS, draw)
        return self._call(index, window_starts, spec.span, float(self.durations[index]),
                          count, rng, min_gap, spec.fps)

    def _other_video(self, index: int, rng: np.random.Generator, need: float) -> int:
        n = len(self.durations)
        group = self.groups[index]

        def eligible(j: int) -> bool:
            return bool(self.has_audio[j]) and self.groups[j] != group and self.durations[j] >= need

        for _ in range(_EASY_TRIES):
            j = int(rng.integers(n))
            if eligible(j):
                return j
        mask = self.has_audio & (self.groups != group) & (self.durations >= need)
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            raise ValueError(
                f"no easy negative for video {index}: no other group has a file with audio "
                f"of at least {need:.3f} s"
            )
        return int(candidates[rng.integers(candidates.size)])

    def _duration_with_audio(self, index: int) -> float:
        self._check_index(index)
        if not self.has_audio[index]:
            raise ValueError(f"video {index} has no audio: no audio-visual pair can be drawn from it")
        return float(self.durations[index])

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.durations):
            raise IndexError(f"video index {index} out of range for {len(self.durations)} videos")

    @staticmethod
    def _call(index: int, fn, *args):
        # name the video in the error: the window functions only know durations
        try:
            return fn(*args)
        except ValueError as error:
            raise ValueError(f"video {index}: {error}") from error

"""Clip windows inside one file: synchronised, offset and multi-window draws, deterministic per sample.

Every draw takes a numpy Generator; `rng_for(seed, epoch, index, stream)` makes one that depends on
nothing else, so a sample comes out the same in any DataLoader worker, on any DDP rank and after a
resume. Times are in seconds from the start of the file. When the spec has an `fps`, every start and
offset is a whole number of frame periods, so a reader returns exactly `spec.num_frames` frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Tolerance for float time comparisons (seconds); well below one audio sample at 48 kHz.
TIME_EPS = 1e-9



def rng_for(seed: int, epoch: int, index: int, stream: int = 0, draw: int = 0) -> np.random.Generator:
    """A numpy Generator that depends only on (seed, epoch, index, stream, draw), all ints >= 0."""
    key = [seed, epoch, index, stream, draw]
    for name, value in zip(("seed", "epoch", "index", "stream", "draw"), key):
        if int(value) != value or value < 0:
            raise ValueError(f"rng_for: {name} must be an integer >= 0, got {value!r}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(v) for v in key])))


@dataclass(frozen=True)
class WindowSpec:
    """Lengths of the video and audio windows of one clip, in seconds, and the frame grid.

    `audio_duration` defaults to `video_duration`. `fps`, when given, puts every start on the grid
    k / fps, so that [start, start + video_duration) holds round(video_duration * fps) frames.
    """

    video_duration: float
    audio_duration: float | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.audio_duration is None:
            object.__setattr__(self, "audio_duration", self.video_duration)
        for name in ("video_duration", "audio_duration"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"WindowSpec.{name} must be a finite number > 0, got {value!r}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"WindowSpec.fps must be a finite number > 0 or None, got {self.fps!r}")

    @property
    def span(self) -> float:
        """Seconds of file a synchronised clip covers: the longer of the two windows."""
        return max(self.video_duration, float(self.audio_duration))

    @property
    def num_frames(self) -> int:
        """Frames in the video window (needs `fps`)."""
        if self.fps is None:
            raise ValueError("WindowSpec.num_frames needs fps")
        return int(round(self.video_duration * self.fps))


class ClipPair(NamedTuple):
    """A video window of one file and an audio window of the same or another file (seconds)."""

    video_index: int
    video_start: float
    audio_index: int
    audio_start: float

    @property
    def offset(self) -> float:
        """audio_start - video_start: > 0 when the audio window comes later (same file only)."""
        return self.audio_start - self.video_start

    @property
    def in_sync(self) -> bool:
        return self.video_index == self.audio_index and abs(self.offset) < TIME_EPS


def grid_draw(rng: np.random.Generator, low: float, high: float, fps: float | None) -> float:
    """A uniform draw from [low, high], restricted to the frame grid k / fps when fps is given."""
    if fps is None:
        if high < low - TIME_EPS:
            raise ValueError(f"empty interval [{low}, {high}]")
        return float(rng.uniform(low, high)) if high > low else float(low)
    k_low, k_high = _grid_bounds(low, high, fps)
    if k_high < k_low:
        raise ValueError(f"no multiple of 1/{fps} s in [{low}, {high}]")
    # k / fps (not k * (1 / fps)): the nearest float to the frame time, e.g. exactly 6.52 at 25 fps
    return int(rng.integers(k_low, k_high + 1)) / fps


def _grid_bounds(low: float, high: float, fps: float) -> tuple[int, int]:
    return math.ceil(low * fps - TIME_EPS * fps), math.floor(high * fps + TIME_EPS * fps)


def sync_start(spec: WindowSpec, duration: float, rng: np.random.Generator) -> float:
    """Start of a synchronised clip: both windows begin here and end inside [0, duration]."""
    if duration + TIME_EPS < spec.span:
        raise ValueError(f"a {duration:.3f} s file is shorter than the {spec.span:.3f} s clip window")
    return grid_draw(rng, 0.0, duration - spec.span, spec.fps)


def start_anywhere(window: float, duration: float, rng: np.random.Generator, fps: float | None) -> float:
    """Start of one window of `window` seconds anywhere inside [0, duration]."""
    if duration + TIME_EPS < window:
        raise ValueError(f"a {duration:.3f} s file is shorter than the {window:.3f} s window")
    return grid_draw(rng, 0.0, duration - window, fps)


def hard_audio_start(spec: WindowSpec, duration: float, video_start: float, rng: np.random.Generator,
                     min_offset: float, max_offset: float | None = None) -> float | None:
    """Start of an out-of-sync audio window of the same file for the video window at `video_start`:
    `min_offset` <= |audio_start - video_start| <= `max_offset` (None: as far as the file allows), the
    audio window inside [0, duration], on the frame grid with spec.fps. The side (earlier or later) is
    drawn first among the feasible ones, then the offset uniformly on that side. None when no start
    is far enough from this video window (a short file, a window in its middle)."""
    if min_offset < 0 or (max_offset is not None and max_offset < min_offset):
        raise ValueError(f"need 0 <= min_offset <= max_offset, got {min_offset}, {max_offset}")
    cap = math.inf if max_offset is None else max_offset
    last = duration - float(spec.audio_duration)  # the latest audio start inside the file
    sides = []
    for low, high in ((max(0.0, video_start - cap), video_start - min_offset),
                      (video_start + min_offset, min(last, video_start + cap))):
        if _has_grid_point(low, high, spec.fps):
            sides.append((low, high))
    if not sides:
        return None
    low, high = sides[int(rng.integers(len(sides)))]
    return grid_draw(rng, low, high, spec.fps)


def hard_audio_fits(spec: WindowSpec, duration: float, min_offset: float, max_offset: float | None = None) -> bool:
    """Whether some video window of a `duration` s file has an audio start `min_offset` away (the
    video window at 0 and the audio window at the end are the farthest apart)."""
    cap = math.inf if max_offset is None else max_offset
    return (duration + TIME_EPS >= spec.span
            and _has_grid_point(min_offset, min(cap, duration - float(spec.audio_duration)), spec.fps))


def _has_grid_point(low: float, high: float, fps: float | None) -> bool:
    if fps is None:
        return high >= low - TIME_EPS
    k_low, k_high = _grid_bounds(low, high, fps)
    return k_high >= k_low


def window_capacity(window: float, duration: float, min_gap: float, fps: float | None) -> int:
    """How many windows of `window` s fit in `duration` s with at least `min_gap` s between them."""
    return int(window_capacities(window, np.array([duration]), min_gap, fps)[0])


def window_capacities(window: float, durations: np.ndarray, min_gap: float, fps: float | None) -> np.ndarray:
    """`window_capacity` for every file at once: int64 [N] from durations [N] (seconds)."""
    room = np.asarray(durations, dtype=np.float64) - window
    if fps is None:
        count = np.floor(room / (window + min_gap) + TIME_EPS) + 1
    else:
        last = np.floor(room * fps + TIME_EPS * fps)
        count = np.floor_divide(last, _grid_step(window + min_gap, fps)) + 1
    return np.where(room >= -TIME_EPS, count, 0).astype(np.int64)


def _grid_step(seconds: float, fps: float) -> int:
    return max(1, math.ceil(seconds * fps - TIME_EPS * fps))


def _last_grid_start(latest: float, fps: float) -> int:
    return math.floor(latest * fps + TIME_EPS * fps)


def window_starts(
    window: float,
    duration: float,
    count: int,
    rng: np.random.Generator,
    min_gap: float = 0.0,
    fps: float | None = None,
) -> np.ndarray:
    """`count` sorted starts of `window`-second windows in [0, duration], each window ending at
    least `min_gap` s before the next begins (starts at least window + min_gap apart).

    Uniform over all such placements: `count` sorted uniform draws from the free slack, each
    shifted by its rank times the step. Returns float64 [count].
    """
    if count < 1 or min_gap < 0:
        raise ValueError(f"need count >= 1 and min_gap >= 0, got {count}, {min_gap}")
    capacity = window_capacity(window, duration, min_gap, fps)
    if capacity < count:
        raise ValueError(
            f"{count} windows of {window:.3f} s with gaps of {min_gap:.3f} s do not fit in a "
            f"{duration:.3f} s file (at most {capacity})"
        )
    ranks = np.arange(count)
    if fps is None:
        step = window + min_gap
        slack = max(0.0, duration - window - (count - 1) * step)
        return np.sort(rng.uniform(0.0, slack, size=count)) + ranks * step
    step_k = _grid_step(window + min_gap, fps)
    slack_k = _last_grid_start(duration - window, fps) - (count - 1) * step_k
    return (np.sort(rng.integers(0, slack_k + 1, size=count)) + ranks * step_k) / fps


def evenly_spaced_starts(duration: float, span: float, clips: int, fps: float) -> list[float]:
    """Starts of `clips` windows of `span` seconds spread evenly over [0, duration]: the centres of
    N equal segments of the admissible range [0, duration - span], floored to the 1/fps grid (0 when
    the file is shorter than a window). N = 1 is the centre window; every evaluation clip uses this."""
    room = max(0.0, duration - span)
    return [float(np.floor(room * (i + 0.5) / clips * fps) / fps) for i in range(clips)]

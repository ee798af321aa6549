"""Per-window embeddings of one media file, decoded and embedded a few windows at a time.

Windows: window i of a file starts at i * stride (seconds), a whole number of frames of the model's
frame grid (1 / data.clip.fps), so starts are exact multiples of 1/fps; a file holds
floor((duration - window) / stride) + 1 windows (one window at 0 when it is shorter than a window,
padded as the readers pad). The default window is the model's clip (`data.clip.frames / fps`
seconds of video; the longer of the video and audio clips for `both`) and the default stride equals
the window (rounded up to a whole number of frames when an audio clip is not).

A window is embedded as the mean of the features of n = ceil(window / clip) clips spread from its
start to its end: clip j starts at j * (window - clip) / (n - 1) after the window's start, floored
to the frame grid (a window of n whole clips is tiled by them), with the evaluation transforms of
`avssl extract` (short side resize, centre crop). The default window is one clip.

Memory stays flat whatever the file's length: the windows are decoded and embedded in chunks of
about `batch` clips; a chunk's frames are decoded in one read when its clips lie close together
(avssl.data.clip_io.read_frames over the chunk's grid), else clip by clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_frames
from avssl.data.transforms import center_crop, resize_short_side, to_channels_first
from avssl.errors import UsageError
from avssl.evaluate.extract import run_model
from avssl.media import MediaReader, NoAudioStreamError, NoVideoStreamError

MODALITIES = ("video", "audio", "both")
GRID_EPS = 1e-6  # a stride within this many frames of a whole number of frames is on the grid


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of a file go, in frames of the model's grid (`fps`): window i starts at
    frame i * stride_frames; its clips start `clip_offsets` frames after the window's start."""

    window: float  # seconds
    stride_frames: int
    fps: float
    clip_offsets: tuple[int, ...]

    @property
    def stride(self) -> float:
        return self.stride_frames / self.fps

    def starts(self, duration: float) -> np.ndarray:
        """float64 [N] window starts (seconds) of a file of `duration` seconds: i * stride / fps."""
        count = 1
        if duration > self.window:
            count = math.floor((duration - self.window) * self.fps / self.stride_frames + GRID_EPS) + 1
        return np.arange(count, dtype=np.int64) * self.stride_frames / self.fps


def clip_span(config: Config, modality: str) -> float:
    """Seconds one clip covers: the video clip, the audio clip, or the longer of the two (`both`)."""
    clip = config.data.clip
    spans = {"video": clip.video_seconds, "audio": clip.audio_window}
    return spans[modality] if modality in spans else max(spans.values())


def plan_windows(config: Config, modality: str, window: float | None = None,
                 stride: float | None = None) -> WindowPlan:
    """The windows for `modality` with `window` / `stride` seconds (None: one clip, stride = window).
    UsageError naming --window / --stride when the window is shorter than a clip or the stride is
    not a whole number of frames of the model's grid."""
    if modality not in MODALITIES:
        raise UsageError(f"--modality must be one of {MODALITIES}, got {modality!r}")
    fps, span = config.data.clip.fps, clip_span(config, modality)
    defaulted = window is None
    window = span if window is None else float(window)
    if window < span - GRID_EPS:
        raise UsageError(f"--window {window:g} s is shorter than the model's clip ({span:g} s)")
    if stride is None and defaulted:
        stride = math.ceil(window * fps - GRID_EPS) / fps  # an audio clip off the frame grid: next frame
    option, stride = ("--stride", float(stride)) if stride is not None else ("--window", window)
    frames = stride * fps
    if stride <= 0 or abs(frames - round(frames)) > GRID_EPS * max(1.0, frames) or round(frames) < 1:
        raise UsageError(f"{option} {stride:g} s is not a whole number of the model's frames (1/{fps:g} s); "
                         "window starts lie on that grid")
    return WindowPlan(window, int(round(frames)), fps, clip_offsets(window, span, fps))


def clip_offsets(window: float, span: float, fps: float) -> tuple[int, ...]:
    """Grid frames (from the window's start) of the ceil(window / span) clips spread over a window."""
    clips = max(1, math.ceil(window / span - GRID_EPS))
    if clips == 1:
        return (0,)
    room = (window - span) * fps
    return tuple(math.floor(j * room / (clips - 1) + GRID_EPS) for j in range(clips))


def check_streams(reader: MediaReader, modality: str) -> None:
    """NoVideoStreamError / NoAudioStreamError (naming the file) when a needed stream is missing."""
    if modality in ("video", "both") and not reader.info.has_video:
        raise NoVideoStreamError(reader.path, f"no video stream (needed for --modality {modality})")
    if modality in ("audio", "both") and not reader.info.has_audio:
        raise NoAudioStreamError(reader.path, f"no audio stream (needed for --modality {modality})")


def read_video_clips(reader: MediaReader, clip_frames: list[int], config: Config) -> torch.Tensor:
    """uint8 [M, 3, T, S, S]: the evaluation clips starting at grid frames `clip_frames` (clip k
    starts at clip_frames[k] / fps), as avssl.data.clip_io.read_video_clip gives them one by one.
    Clips that lie close together are decoded in one read of the frames between them."""
    clip, size = config.data.clip, config.data.video_augment.size
    lo, hi = min(clip_frames), max(clip_frames) + clip.frames
    if hi - lo > 2 * len(clip_frames) * clip.frames:  # far apart: decoding the gaps would cost more
        return torch.cat([read_video_clips(reader, [k], config) for k in clip_frames])
    frames = read_frames(reader, lo / clip.fps, hi - lo, clip.fps, size)
    chunk = center_crop(resize_short_side(to_channels_first(frames), size), (size, size))
    return torch.stack([chunk[:, k - lo:k - lo + clip.frames] for k in clip_frames]).contiguous()


def read_audio_clips(reader: MediaReader, clip_frames: list[int], config: Config) -> torch.Tensor:
    """float32 [M, samples]: the audio clips starting at grid frames `clip_frames`."""
    clip = config.data.clip
    return torch.stack([read_audio_clip(reader, k / clip.fps, clip.audio_window, clip.sample_rate)
                        for k in clip_frames])


@dataclass
class FileWindows:
    """The windows of one file: starts / ends [N] seconds, `video` / `audio` float32 [N, D] or None."""

    path: str
    starts: np.ndarray
    ends: np.ndarray
    video: np.ndarray | None
    audio: np.ndarray | None


def window_chunks(plan: WindowPlan, starts: np.ndarray, batch: int) -> Iterator[tuple[int, int, list[int]]]:
    """(first window, end window, the grid frames of their clips) for chunks of about `batch` clips."""
    per_chunk = max(1, batch // len(plan.clip_offsets))
    for first in range(0, len(starts), per_chunk):
        end = min(len(starts), first + per_chunk)
        clip_frames = [i * plan.stride_frames + o for i in range(first, end) for o in plan.clip_offsets]
        yield first, end, clip_frames


def embed_windows(reader: MediaReader, plan: WindowPlan, config: Config, fns: dict[str, Callable | None], *,
                  batch: int = 16, device: str | torch.device = "cpu",
                  on_chunk: Callable[[int], None] | None = None) -> FileWindows:
    """Every window of the open file through `fns` ({"video": uint8 clips -> [M, D] or None,
    "audio": waveforms -> [M, D] or None}); `on_chunk(windows done in the chunk)` after each chunk.
    Only one chunk's frames are in memory at a time."""
    modality = "both" if all(fns.values()) else ("video" if fns.get("video") else "audio")
    check_streams(reader, modality)
    starts = plan.starts(reader.info.duration)
    readers = {"video": read_video_clips, "audio": read_audio_clips}
    rows: dict[str, list[torch.Tensor]] = {"video": [], "audio": []}
    clips = len(plan.clip_offsets)
    for first, end, clip_frames in window_chunks(plan, starts, batch):
        for name, fn in fns.items():
            if fn is None:
                continue
            inputs = readers[name](reader, clip_frames, config)
            features = run_model(fn, inputs, batch, device)
            rows[name].append(features.reshape(end - first, clips, -1).mean(dim=1))
        if on_chunk is not None:
            on_chunk(end - first)
    out = {name: torch.cat(r).numpy() if r else None for name, r in rows.items()}
    return FileWindows(reader.path, starts, starts + plan.window, out["video"], out["audio"])

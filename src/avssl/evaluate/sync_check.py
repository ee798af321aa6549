"""Estimate a file's audio-video offset with a synchronisation model (`avssl sync-check`).

Sign: the offset is positive when the audio comes LATE, i.e. a sound is heard `offset` seconds after
the frame that shows its cause; a file whose audio is delayed by 0.4 s has offset +0.4.

How: video windows (the model's clip: `data.clip.frames` frames at `data.clip.fps`, evaluation
centre crop) start every `hop` seconds on the file's frame grid. Audio windows (`data.clip.audio_window`)
start on every frame of that grid. For each candidate offset d = k / fps, k = -K..K with
K = floor(max_offset * fps), each video window starting at s is scored against the audio window
starting at s + d: the model's sync score (AVTS: minus the distance of the two L2-normalised
embeddings, the quantity its margin loss trains; other methods: cosine similarity of embed_video and
embed_audio). The score of d is the mean over the video windows whose audio window s + d lies in the
file; the estimate is the d of the highest score.

Confidence: let S(d) be the aggregated scores, d* the best offset and
    rival = max { S(d) : |d - d*| > exclusion }   (exclusion = the audio window by default: offsets
            closer than that share audio with d*, so their scores are not independent rivals)
    noise = 1.4826 * median_d |S(d + 1 frame) - S(d)| / sqrt(2)
    confidence = (S(d*) - rival) / noise
i.e. by how many noise units the winner beats the best offset outside its neighbourhood, the noise
being the curve's frame-to-frame jitter (a robust standard deviation of its first differences, which
a smooth trend over the range does not inflate). 0 means another, distant offset scores as well.
The estimate is called confident when confidence >= `threshold` (default CONFIDENT: about the 90th
percentile of untrained avts-tiny on held-out demo clips; docs/benchmarks.md has the distributions).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.errors import UsageError
from avssl.evaluate.av_model import (
    batches,
    embed_audio_batches,
    embed_video_batches,
    open_av_file,
    pair_scores,
    score_kind,
)
from avssl.evaluate.pretrained import PretrainedModel

MAX_OFFSET = 2.0  # seconds searched either way
HOP = 0.2  # seconds between video windows
CONFIDENT = 10.0  # confidence at or above which an estimate is reported as confident


@dataclass
class SyncEstimate:
    """One file's result: `offsets` [K] seconds, `scores` [K] (nan where no window fits), `windows`
    [K] the number of video windows averaged per offset."""

    path: str
    fps: float
    offsets: np.ndarray
    scores: np.ndarray
    windows: np.ndarray
    offset: float
    confidence: float
    rival_offset: float | None
    confident: bool
    kind: str
    model: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "offset_seconds": self.offset, "offset_frames": int(round(self.offset * self.fps)),
            "confidence": self.confidence, "confident": self.confident, "rival_offset_seconds": self.rival_offset,
            "fps": self.fps, "score": self.kind, "model": self.model,
            "offsets_seconds": [float(x) for x in self.offsets],
            "scores": [None if not math.isfinite(s) else float(s) for s in self.scores],
            "windows": [int(n) for n in self.windows],
        }

    def describe(self) -> str:
        """One line for the terminal; says plainly when the estimate is not to be trusted."""
        frames = int(round(self.offset * self.fps))
        side = "audio late" if frames > 0 else "audio early" if frames < 0 else "in sync"
        line = f"{self.path}: offset {self.offset:+.3f} s ({frames:+d} frames, {side}), confidence {self.confidence:.2f}"
        if not self.confident:
            line += " -- NOT CONFIDENT: the model does not single out one offset; do not trust this estimate"
        return line


def offset_steps(max_offset: float, fps: float) -> np.ndarray:
    """int [2K + 1]: the candidate offsets in frames, K = floor(max_offset * fps)."""
    k = int(math.floor(max_offset * fps + 1e-9))
    return np.arange(-k, k + 1)


def grid_count(duration: float, fps: float, window: float) -> int:
    """How many windows of `window` seconds start on the frame grid j / fps inside `duration`."""
    return max(0, int(math.floor((duration - window) * fps + 1e-6)) + 1)


def score_matrix(video: torch.Tensor, audio: torch.Tensor, video_frames: np.ndarray, steps: np.ndarray,
                 kind: str) -> np.ndarray:
    """float [W, K]: video window w (embedding video[w], starting on frame video_frames[w]) against the
    audio window that starts `steps[k]` frames later (audio[j] starts on frame j); nan where that
    audio window is off the grid (before the file or past its end)."""
    index = video_frames[:, None] + steps[None, :]
    valid = (index >= 0) & (index < len(audio))
    pairs = pair_scores(video[:, None, :], audio[np.clip(index, 0, max(len(audio) - 1, 0))], kind)
    out = pairs.numpy().astype(np.float64)
    out[~valid] = np.nan
    return out


def aggregate(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean score per offset over the windows where it is defined (nan where none), count) [K] each."""
    counts = np.isfinite(matrix).sum(axis=0)
    with np.errstate(invalid="ignore"):
        sums = np.nansum(matrix, axis=0)
    scores = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return scores, counts


def estimate_offset(offsets: np.ndarray, scores: np.ndarray, exclusion: float) -> tuple[int, float, int | None]:
    """(index of the best offset, confidence, index of the rival or None) as the module docstring
    defines them; scores may hold nan (left out). Confidence is 0 when a distant offset ties the best,
    inf when the curve has no jitter or no offset lies outside the exclusion zone (a range narrower
    than it)."""
    finite = np.isfinite(scores)
    if not finite.any():
        raise ValueError("no offset has a score")
    best = int(np.argmax(np.where(finite, scores, -np.inf)))
    far = finite & (np.abs(offsets - offsets[best]) > exclusion + 1e-9)
    if not far.any():
        return best, math.inf, None
    rival = int(np.argmax(np.where(far, scores, -np.inf)))
    margin = float(scores[best] - scores[rival])
    noise = score_noise(scores)
    if margin <= 0:
        return best, 0.0, rival
    return best, (margin / noise if noise > 0 else math.inf), rival


def score_noise(scores: np.ndarray) -> float:
    """Robust standard deviation of a score curve's jitter: 1.4826 x the median absolute difference of
    neighbouring offsets, / sqrt(2) (the difference of two independent noises has twice the variance)."""
    steps = np.diff(scores)
    steps = np.abs(steps[np.isfinite(steps)])
    return float(1.4826 * np.median(steps) / math.sqrt(2)) if len(steps) else 0.0


@torch.no_grad()
def sync_check_file(loaded: PretrainedModel, path: str, max_offset: float = MAX_OFFSET, hop: float = HOP,
                    threshold: float = CONFIDENT, batch_size: int = 32) -> SyncEstimate:
    """The offset estimate of one file (see the module docstring). MediaError (naming the file) when
    it cannot be read, UsageError when it is too short for one window."""
    config, method = loaded.config, loaded.method
    clip = config.data.clip
    kind = score_kind(loaded)
    with open_av_file(path) as reader:
        info = reader.info
        fps = float(info.video_fps)
        duration = float(info.duration)
        if fps <= 0:
            raise UsageError(f"{path}: the video stream states no frame rate, so there is no frame grid to search on")
        window = max(clip.video_seconds, clip.audio_window)
        n_audio = grid_count(duration, fps, clip.audio_window)
        n_video = grid_count(duration, fps, window)
        if n_video < 1 or n_audio < 1:
            raise UsageError(f"{path}: {duration:.2f} s is shorter than the model's {window:g} s window")
        hop_frames = max(1, int(round(hop * fps)))
        video_frames = np.arange(0, n_video, hop_frames)
        video = embed_video_batches(method, (
            torch.stack([read_video_clip(reader, j / fps, clip.frames, clip.fps, config.data.video_augment, None)
                         for j in chunk]) for chunk in batches(video_frames.tolist(), batch_size)))
        audio = embed_audio_batches(method, audio_windows(reader, duration, fps, n_audio, clip, batch_size))
    steps = offset_steps(max_offset, fps)
    offsets = steps / fps
    scores, counts = aggregate(score_matrix(video, audio, video_frames, steps, kind))
    if not np.isfinite(scores).any():
        raise UsageError(f"{path}: no offset in +-{max_offset:g} s leaves an audio window inside the file")
    best, confidence, rival = estimate_offset(offsets, scores, clip.audio_window)
    return SyncEstimate(path, fps, offsets, scores, counts, float(offsets[best]), confidence,
                        None if rival is None else float(offsets[rival]), confidence >= threshold, kind,
                        loaded.source)


def audio_windows(reader, duration: float, fps: float, count: int, clip, batch_size: int):
    """Batches [B, samples] of the audio windows that start on frames 0..count-1. Each batch is cut
    from one read of the span its windows cover (sample k of a read is the signal at start + k / rate,
    so a slice is a window), starting on the first window's sample, so that only a batch's span is
    held at a time, not the whole track (a 2-hour film is ~460 MB of 16 kHz float audio)."""
    rate = clip.sample_rate
    length = int(round(clip.audio_window * rate))
    for chunk in batches(list(range(count)), batch_size):
        firsts = [int(round(j / fps * rate)) for j in chunk]
        begin, span = firsts[0], firsts[-1] - firsts[0] + length
        part = read_audio_clip(reader, begin / rate, min(span / rate, duration - begin / rate), rate)
        part = torch.cat([part, torch.zeros(max(0, span - len(part)))])  # the last window may round past the end
        yield torch.stack([part[f - begin:][:length] for f in firsts])


def plot_sync_scores(estimate: SyncEstimate, path: str) -> str:
    """PNG of score against offset, the estimate and its rival marked; returns the path."""
    from avssl.evaluate.plots import plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(estimate.offsets, estimate.scores, color="C0", linewidth=1.2)
    ax.axvline(estimate.offset, color="C3", linestyle="--", linewidth=1,
               label=f"estimate {estimate.offset:+.3f} s")
    if estimate.rival_offset is not None:
        ax.axvline(estimate.rival_offset, color="0.5", linestyle=":", linewidth=1,
                   label=f"rival {estimate.rival_offset:+.3f} s")
    ax.axvline(0.0, color="0.8", linewidth=0.8)
    label = "minus sync distance" if estimate.kind == "neg_distance" else "cosine similarity"
    ax.set_xlabel("offset (s); positive: audio late")
    ax.set_ylabel(f"mean {label}")
    verdict = "" if estimate.confident else " (NOT confident)"
    ax.set_title(f"{os.path.basename(estimate.path)}: confidence {estimate.confidence:.2f}{verdict}", fontsize=9)
    ax.legend(fontsize=7)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def output_names(paths: list[str]) -> list[str]:
    """A distinct output name per input: the file stem, with -2, -3, ... for repeated stems."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        stem = os.path.splitext(os.path.basename(p))[0]
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def write_estimate(estimate: SyncEstimate, out_dir: str, name: str) -> tuple[str, str]:
    """`<name>.json` and `<name>.png` in out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, f"{name}.json")
    with open(json_path, "w") as f:
        json.dump(estimate.to_json(), f, indent=1)
    return json_path, plot_sync_scores(estimate, os.path.join(out_dir, f"{name}.png"))

"""In-sync vs out-of-sync accuracy of a synchronisation model (AVTS) on held-out files.

For each of `windows_per_file` windows of each file, two pairs are judged by the distance between
the video and audio embeddings (the quantity AVTS trains with its margin loss):

- easy: each of two video windows against its own audio and against the audio of the same window
  slot in the next file (a different source);
- hard: the second video window against its own audio and against the same file's audio shifted
  as the recipe shifts it (`method.min_offset` of gap between the two audio windows, unless
  `method.hard_overlap`).

A pair is right when the in-sync audio is the nearer one; chance is 0.5. Windows come from
ClipSampler with a fixed seed, so two models are judged on the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.recipes.avts import hard_min_offset
from avssl.data.recipes.base import clip_window
from avssl.data.sampling import ClipSampler
from avssl.errors import UsageError
from avssl.media import MediaReader

PAIR_SEED = 12345


@dataclass
class SyncPairs:
    """Decoded evaluation windows: row 2k a synchronised window, row 2k + 1 the video window of a
    hard negative (both also make easy pairs).

    video uint8 [N, 3, T, S, S]; audio float [N, samples] (in sync with video); shifted_audio
    [N // 2, samples]: the hard negative of each odd row; source [N]: file index; starts [N, 2]:
    (video start, start of the shifted audio) in seconds, nan for even rows.
    """

    video: torch.Tensor
    audio: torch.Tensor
    shifted_audio: torch.Tensor
    source: torch.Tensor
    starts: np.ndarray
    windows_per_file: int


def sync_pairs(paths: Sequence[str], durations: Sequence[float], config: Any, windows_per_file: int = 4,
               backend: str | None = None) -> SyncPairs:
    """The evaluation windows of `paths` at `config`'s clip and augmentation (centre crop); the hard
    negatives are those of the method's recipe (avssl.data.recipes.avts.hard_min_offset)."""
    if len(paths) < 2:
        raise UsageError(f"the sync evaluation needs at least 2 files (easy pairs take another file's audio), "
                         f"got {len(paths)}")
    clip = config.data.clip
    durations = np.asarray(durations, dtype=np.float64)
    sampler = ClipSampler(durations, clip_window(config), seed=PAIR_SEED, min_offset=hard_min_offset(config),
                          max_offset=config.method.params.max_offset)
    too_short = [p for i, p in enumerate(paths) if not sampler.can_hard_negative(i)]
    if too_short:
        raise UsageError(f"{len(too_short)} file(s) too short for a hard negative {hard_min_offset(config):g} s "
                         f"from a {clip.audio_window} s window, e.g. {too_short[0]}")
    video, audio, shifted, source, starts = [], [], [], [], []
    for i, path in enumerate(paths):
        with MediaReader(path, backend=backend) as reader:
            for k in range(windows_per_file):
                sync_start = sampler.sync_pair(i, 2 * k).video_start
                hard_start, hard_audio = hard_window(sampler, i, 2 * k + 1)
                for start in (sync_start, hard_start):
                    video.append(read_video_clip(reader, start, clip.frames, clip.fps, config.data.video_augment, None))
                    audio.append(read_audio_clip(reader, start, clip.audio_window, clip.sample_rate))
                    source.append(i)
                shifted.append(read_audio_clip(reader, hard_audio, clip.audio_window, clip.sample_rate))
                starts += [(sync_start, float("nan")), (hard_start, hard_audio)]
    return SyncPairs(torch.stack(video), torch.stack(audio), torch.stack(shifted), torch.tensor(source),
                     np.asarray(starts, dtype=np.float64), windows_per_file)


def hard_window(sampler: ClipSampler, index: int, draw: int, tries: int = 64) -> tuple[float, float]:
    """(video start, hard-negative audio start) of a window of file `index` that has a hard negative:
    the sampler's windows for draws draw, draw + 1000, ... until one has (the file can hold one)."""
    for attempt in range(tries):
        epoch = draw + 1000 * attempt
        start = sampler.sync_pair(index, epoch).video_start
        hard = sampler.hard_negative(index, epoch, start)
        if hard is not None:
            return start, hard
    raise UsageError(f"file {index}: no window with a hard negative in {tries} draws")


@torch.no_grad()
def sync_decisions(method: Any, pairs: SyncPairs, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Per pair, whether the in-sync audio is nearer the video: 'easy' [N] and 'hard' [N // 2] booleans
    (hard row j is window row 2j + 1).

    Leaves the method in the mode it found it in.
    """
    was_training = method.training
    method.eval()
    try:
        v = torch.cat([method.embed_video(method.video_input(x.to(method.device), train=False))
                       for x in pairs.video.split(batch_size)]).cpu()
        a, h = (torch.cat([method.embed_audio(method.audio_input(x.to(method.device), train=False))
                           for x in waves.split(batch_size)]).cpu() for waves in (pairs.audio, pairs.shifted_audio))
    finally:
        method.train(was_training)
    n = len(v)
    hard_rows = torch.arange(1, n, 2)
    other = (torch.arange(n) + 2 * pairs.windows_per_file) % n  # the same window slot of the next file
    if (pairs.source[other] == pairs.source).any():
        raise AssertionError("easy negatives must come from another file")
    d_sync = (v - a).norm(dim=1)
    return {"easy": d_sync < (v - a[other]).norm(dim=1),
            "hard": d_sync[hard_rows] < (v[hard_rows] - h).norm(dim=1)}


def sync_accuracy(method: Any, pairs: SyncPairs) -> dict[str, float]:
    """Shares of right decisions: easy, hard, all, and n_pairs (chance is 0.5)."""
    d = sync_decisions(method, pairs)
    both = torch.cat([d["easy"], d["hard"]]).float()
    return {"easy": d["easy"].float().mean().item(), "hard": d["hard"].float().mean().item(),
            "all": both.mean().item(), "n_pairs": float(len(both))}

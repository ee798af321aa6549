"""The AVCL sample: two augmented crops of one synchronised video window (one decode), and its audio.

Files without audio are kept: their audio is a zero placeholder with `audio_present` False, which the
model masks (the zeros never reach an encoder or a loss), so such a clip enters only the fused contrast.
"""

from __future__ import annotations

import torch

from avssl.config.data import ClipConfig, VideoAugmentConfig
from avssl.data.clip_io import random_crop_flip, read_audio_clip, read_frames
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import WindowSpec, rng_for, sync_start
from avssl.data.streams import SampleStream
from avssl.media import MediaReader


def random_clip_start(table: FileTable, index: int, epoch: int, window: WindowSpec, seed: int,
                      draw: int = 0) -> float:
    """Start of a synchronised window in file `index`, drawn from (seed, epoch, index, draw).

    The same draw as ClipSampler.sync_pair, but valid for files without audio too (their video
    window is still usable; the audio is masked downstream).
    """
    try:
        return sync_start(window, float(table.durations[index]), rng_for(seed, epoch, index, SampleStream.SYNC, draw))
    except ValueError as err:
        raise ValueError(f"{table.paths[index]}: {err}") from None


def read_video_views(reader: MediaReader, start: float, clip: ClipConfig, augment: VideoAugmentConfig,
                     views: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 [views, 3, T, S, S]: one decode of the clip's frames from `start`, then an independent
    random resized crop and flip per view (the same for all frames of a view)."""
    frames = read_frames(reader, start, clip.frames, clip.fps, augment.size)
    return random_crop_flip(frames, (augment.size, augment.size), augment, generator, views)


def read_audio_or_silence(reader: MediaReader, has_audio: bool, start: float, seconds: float,
                          sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(float32 [round(seconds * sample_rate)], bool scalar present). A file without audio gives
    zeros and present=False: the zeros are a placeholder that the model masks, never a signal."""
    if has_audio:
        return read_audio_clip(reader, start, seconds, sample_rate), torch.tensor(True)
    return torch.zeros(int(round(seconds * sample_rate)), dtype=torch.float32), torch.tensor(False)


class AVCLRecipe(SampleRecipe):
    """video uint8 [2, 3, T, S, S] (two views), audio float [N], audio_present bool, group int64."""

    VIEWS = 2
    streams = "video"  # files without audio train too (their audio masked)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index = ctx.index
        start = ctx.key.start
        if start is None:
            start = random_clip_start(ctx.table, index, ctx.key.epoch, self.window, self.config.seed, ctx.key.draw)
        reader = ctx.reader()
        video = read_video_views(reader, start, self.clip, self.augment, self.VIEWS, ctx.torch_generator())
        audio, present = read_audio_or_silence(reader, bool(ctx.table.has_audio[index]), start,
                                               self.clip.audio_window, self.clip.sample_rate)
        return {"video": video, "audio": audio, "audio_present": present,
                "group": torch.tensor(int(ctx.table.groups[index]))}

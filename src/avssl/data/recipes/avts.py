"""The AVTS sample: a video clip, its in-sync audio, and a hard-negative audio of the same file shifted
relative to that very video clip."""

from __future__ import annotations

import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.base import SampleRecipe, clip_window
from avssl.data.sampling import ClipSampler


def hard_min_offset(config: Config) -> float:
    """The least distance between the starts of the in-sync and the hard-negative audio windows.

    `method.min_offset` is the gap between the two audio windows (one ends at least that long before
    the other starts: they share no sample); with `method.hard_overlap` it is the distance between
    their starts instead, and the windows may overlap."""
    params = config.method.params
    return params.min_offset + (0.0 if params.hard_overlap else config.data.clip.audio_window)


def hard_sampler(table: FileTable, config: Config, seed: int) -> ClipSampler:
    """The ClipSampler whose hard negatives follow the config (see hard_min_offset)."""
    return ClipSampler(table.durations, clip_window(config), has_audio=table.has_audio, seed=seed,
                       min_offset=hard_min_offset(config), max_offset=config.method.params.max_offset)


class AVTSRecipe(SampleRecipe):
    """video uint8 [3, T, S, S], audio and audio_hard float [N], has_hard bool (False when no audio
    start of the file is far enough from this video window; `audio_hard` is then never used), group
    int64, and the starts in file seconds: video_start, audio_hard_start (nan without a hard negative)."""

    def __init__(self, table: FileTable, config: Config) -> None:
        super().__init__(table, config)
        self.sampler = hard_sampler(table, config, config.seed)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index, epoch = ctx.index, ctx.key.epoch
        reader = ctx.reader()
        clip = self.clip
        start = self.sampler.sync_pair(index, epoch, ctx.key.draw).video_start
        video = read_video_clip(reader, start, clip.frames, clip.fps, self.augment, ctx.torch_generator())
        audio = read_audio_clip(reader, start, clip.audio_window, clip.sample_rate)
        hard_start = self.sampler.hard_negative(index, epoch, start, ctx.key.draw)
        if hard_start is None:
            audio_hard = torch.zeros_like(audio)  # masked by has_hard: never used as a negative
        else:
            audio_hard = read_audio_clip(reader, hard_start, clip.audio_window, clip.sample_rate)
        return {
            "video": video,
            "audio": audio,
            "audio_hard": audio_hard,
            "has_hard": torch.tensor(hard_start is not None),
            "group": torch.tensor(int(ctx.table.groups[index])),
            "video_start": torch.tensor(start, dtype=torch.float64),
            "audio_hard_start": torch.tensor(float("nan") if hard_start is None else hard_start, dtype=torch.float64),
        }

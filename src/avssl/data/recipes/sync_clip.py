"""The in-sync sample: a video clip and the audio of the same instant (av-nce; movie-nce's clips)."""

from __future__ import annotations

import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import ClipSampler


class SyncClipRecipe(SampleRecipe):
    """video uint8 [3, T, S, S], audio float [N], group (source or movie) and file (index) int64,
    start float64 seconds.

    The start comes from a batch sampler's key (ctx.key.start) when it chose one; otherwise (an index
    sampler, or a substitute file after a decode failure) a synchronised start is drawn.
    """

    def __init__(self, table: FileTable, config: Config) -> None:
        super().__init__(table, config)
        self.sampler = ClipSampler(table.durations, self.window, has_audio=table.has_audio, seed=config.seed)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        start = ctx.key.start
        if start is None:
            start = self.sampler.sync_pair(ctx.index, ctx.key.epoch, ctx.key.draw).video_start
        reader = ctx.reader()
        clip = self.clip
        video = read_video_clip(reader, start, clip.frames, clip.fps, self.augment, ctx.torch_generator())
        audio = read_audio_clip(reader, start, clip.audio_window, clip.sample_rate)
        return {
            "video": video,
            "audio": audio,
            "group": torch.tensor(int(ctx.table.groups[ctx.index])),
            "file": torch.tensor(int(ctx.index)),
            "start": torch.tensor(float(start), dtype=torch.float64),
        }

"""The AVTS sample: a video clip, its in-sync audio, and a hard-negative audio of the same file."""

from __future__ import annotations

import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import ClipSampler


class AVTSRecipe(SampleRecipe):
    """video uint8 [3, T, S, S], audio and audio_hard float [N], has_hard bool (a file too short for
    an offset of `method.min_offset` has no hard negative; its `audio_hard` is never used), group int64."""

    def __init__(self, table: FileTable, config: Config) -> None:
        super().__init__(table, config)
        params = config.method.params
        self.sampler = ClipSampler(table.durations, self.window, has_audio=table.has_audio, seed=config.seed,
                                   min_offset=params.min_offset, max_offset=params.max_offset)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index, epoch = ctx.index, ctx.key.epoch
        reader = ctx.reader()
        pair = self.sampler.sync_pair(index, epoch)
        clip = self.clip
        video = read_video_clip(reader, pair.video_start, clip.frames, clip.fps, self.augment, ctx.torch_generator())
        audio = read_audio_clip(reader, pair.audio_start, clip.audio_window, clip.sample_rate)
        has_hard = self.sampler.can_hard_negative(index)
        if has_hard:
            hard = self.sampler.hard_negative(index, epoch)
            audio_hard = read_audio_clip(reader, hard.audio_start, clip.audio_window, clip.sample_rate)
        else:
            audio_hard = torch.zeros_like(audio)  # masked by has_hard: never used as a negative
        return {
            "video": video,
            "audio": audio,
            "audio_hard": audio_hard,
            "has_hard": torch.tensor(has_hard),
            "group": torch.tensor(int(ctx.table.groups[index])),
        }

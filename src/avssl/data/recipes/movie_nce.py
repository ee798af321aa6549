"""The movie-nce sample: a video clip and the audio of the same instant, from hierarchical batches
(M movies, then K clips of each) so that a chosen share of every clip's negatives is from its own movie."""

from __future__ import annotations

import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import ClipSampler, HierarchicalBatchSampler


class MovieNCERecipe(SampleRecipe):
    """video uint8 [3, T, S, S], audio float [N], group (movie), file (index) int64, start float64 s.

    The start comes from the batch sampler's key (ctx.key.start); when the key has none (a plain
    index sampler, or a substitute file after a decode failure) a synchronised start is drawn.
    """

    def __init__(self, table: FileTable, config: Config) -> None:
        super().__init__(table, config)
        self.sampler = ClipSampler(table.durations, self.window, has_audio=table.has_audio, seed=config.seed)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        start = ctx.key.start
        if start is None:
            start = self.sampler.sync_pair(ctx.index, ctx.key.epoch).video_start
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

    def train_sampler(self, *, rank: int, world_size: int) -> tuple[HierarchicalBatchSampler, bool]:
        """Batches of K clips from each of M movies (lists of (file index, start)); is_batch_sampler."""
        p = self.config.method.params
        sampler = HierarchicalBatchSampler(
            self.table.groups, self.table.durations, self.window, self.config.data.batch_size,
            p.within_movie_share, min_gap=p.min_gap, has_audio=self.table.has_audio, repeats=p.movie_repeats,
            seed=self.config.seed, num_replicas=world_size, rank=rank,
        )
        return sampler, True

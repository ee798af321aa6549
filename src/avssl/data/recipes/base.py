"""What every recipe shares: the clip window of a config, the default epoch sampler (samples per file by
length), the shortest usable file."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from avssl.config.schema import Config
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.sampling import (
    ResumableDistributedSampler,
    WindowSpec,
    samples_per_file,
)


def clip_window(config: Config) -> WindowSpec:
    """The windows of one training clip: `data.clip`'s video and audio seconds on its frame grid."""
    clip = config.data.clip
    return WindowSpec(clip.video_seconds, clip.audio_window, clip.fps)


class SampleRecipe:
    """Base of the recipes: one sample's tensors from a SampleContext (`__call__`, picklable: it runs in
    loader workers), the sampler of an epoch and the shortest file the sample fits in."""

    # the streams a file needs for this sample ("both", or "video" when audio may be absent): the
    # manifest rows without them are left out of training (avssl.data.manifest.Manifest.usable_mask)
    streams = "both"

    def __init__(self, table: FileTable, config: Config) -> None:
        self.table = table
        self.config = config
        self.clip = config.data.clip
        self.augment = config.data.video_augment
        self.window = clip_window(config)

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @classmethod
    def min_file_duration(cls, config: Config) -> float:
        """Seconds a file must last for this sample; shorter files are left out (and listed)."""
        return clip_window(config).span

    @classmethod
    def min_video_fps(cls, config: Config) -> float | None:
        """Frames per second a file's video needs for this sample (files below are left out and
        listed), or None when any rate does."""
        return None

    def epoch_counts(self) -> np.ndarray:
        """int64 [N]: the samples each file of the table gives per epoch (`data.samples_per_file`: one
        per `seconds` of the file, the clip span when null, at least 1, at most `max`)."""
        per_file = self.config.data.samples_per_file
        seconds = self.window.span if per_file.seconds is None else per_file.seconds
        return samples_per_file(self.table.durations, seconds, per_file.max)

    def train_sampler(self, *, rank: int, world_size: int) -> tuple[Any, bool]:
        """(sampler, is_batch_sampler). Default: each usable file `epoch_counts` times per epoch,
        DDP-split, resumable."""
        sampler = ResumableDistributedSampler(len(self.table), counts=self.epoch_counts(),
                                              num_replicas=world_size, rank=rank, seed=self.config.seed,
                                              drop_last=False)
        return sampler, False

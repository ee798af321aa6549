"""The supervised fine-tuning samples: labelled clips of a file (as many per epoch as the sampler draws it).

FinetuneRecipe (video, audio optional): training takes a random synchronised window with a random
crop and flip, evaluation the centre window with a centre crop; files without audio are kept, their
audio a masked zero placeholder. AudioFinetuneRecipe (audio alone, e.g. ESC-50): a random window of
`data.clip.audio_seconds` when training (drawn from seed, epoch, file and draw), the centre one for
evaluation; no video is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.avcl import (
    random_clip_start,
    read_audio_or_silence,
    read_video_views,
)
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import WindowSpec, evenly_spaced_starts, rng_for
from avssl.data.sampling.windows import start_anywhere
from avssl.data.streams import SampleStream
from avssl.errors import UsageError


@dataclass(frozen=True)
class LabelledTable:
    """A FileTable and the class index of each of its files (int64 [N], every entry in [0, classes))."""

    table: FileTable
    labels: np.ndarray

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.int64)
        if labels.shape != (len(self.table),):
            raise UsageError(f"labels must have one entry per file ({len(self.table)}), got shape {labels.shape}")
        bad = np.flatnonzero(labels < 0)
        if bad.size:
            raise UsageError(f"{self.table.paths[int(bad[0])]}: no label ({bad.size} unlabelled files); "
                             "fine-tuning needs a label for every file")
        object.__setattr__(self, "labels", labels)

    @classmethod
    def from_manifest(cls, manifest: Any, label_index: Optional[dict[str, int]] = None) -> LabelledTable:
        """From a Manifest with a `label` column; `label_index` (label -> class) defaults to the sorted labels."""
        return cls(FileTable.from_manifest(manifest), manifest.label_ids(label_index))

    def __len__(self) -> int:
        return len(self.table)


class FinetuneRecipe(SampleRecipe):
    """video uint8 [3, T, S, S], audio float [N], audio_present bool, label int64."""

    streams = "video"

    def __init__(self, labelled: LabelledTable, config: Config, train: bool) -> None:
        super().__init__(labelled.table, config)
        self.labels = labelled.labels
        self.train = train

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index = ctx.index
        reader = ctx.reader()
        clip = self.clip
        if self.train:
            start = ctx.key.start
            if start is None:
                start = random_clip_start(ctx.table, index, ctx.key.epoch, self.window, self.config.seed,
                                          ctx.key.draw)
            video = read_video_views(reader, start, clip, self.augment, 1, ctx.torch_generator())[0]
        else:
            start = evenly_spaced_starts(float(ctx.table.durations[index]), self.window.span, 1, clip.fps)[0]
            video = read_video_clip(reader, start, clip.frames, clip.fps, self.augment, None)
        audio, present = read_audio_or_silence(reader, bool(ctx.table.has_audio[index]), start, clip.audio_window,
                                               clip.sample_rate)
        return {"video": video, "audio": audio, "audio_present": present,
                "label": torch.tensor(int(self.labels[index]))}


class AudioFinetuneRecipe(SampleRecipe):
    """audio float [N] (N = audio_seconds x sample_rate), audio_present bool (True), label int64."""

    streams = "audio"

    def __init__(self, labelled: LabelledTable, config: Config, train: bool) -> None:
        super().__init__(labelled.table, config)
        self.labels = labelled.labels
        self.train = train
        self.window = audio_window(config)

    @classmethod
    def min_file_duration(cls, config: Config) -> float:
        return audio_window(config).span

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index, clip = ctx.index, self.clip
        duration = float(ctx.table.durations[index])
        if self.train:
            rng = rng_for(self.config.seed, ctx.key.epoch, index, SampleStream.SYNC, ctx.key.draw)
            start = start_anywhere(self.window.span, duration, rng, None)
        else:
            start = evenly_spaced_starts(duration, self.window.span, 1, clip.fps)[0]
        audio = read_audio_clip(ctx.reader(), start, clip.audio_window, clip.sample_rate)
        return {"audio": audio, "audio_present": torch.tensor(True), "label": torch.tensor(int(self.labels[index]))}


def audio_window(config: Config) -> WindowSpec:
    """The window of an audio-only sample: `data.clip.audio_window` seconds, no frame grid."""
    seconds = config.data.clip.audio_window
    return WindowSpec(seconds, seconds, None)

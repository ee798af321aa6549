"""The supervised fine-tuning sample: one labelled clip per file and epoch, audio optional.

Training: a random synchronised window with a random crop and flip; evaluation: the centre window
with a centre crop. Files without audio are kept, their audio a masked zero placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.data.recipes.avcl import (
    random_clip_start,
    read_audio_or_silence,
    read_video_views,
)
from avssl.data.recipes.base import SampleRecipe
from avssl.data.sampling import evenly_spaced_starts
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
                start = random_clip_start(ctx.table, index, ctx.key.epoch, self.window, self.config.seed)
            video = read_video_views(reader, start, clip, self.augment, 1, ctx.torch_generator())[0]
        else:
            start = evenly_spaced_starts(float(ctx.table.durations[index]), self.window.span, 1, clip.fps)[0]
            video = read_video_clip(reader, start, clip.frames, clip.fps, self.augment, None)
        audio, present = read_audio_or_silence(reader, bool(ctx.table.has_audio[index]), start, clip.audio_window,
                                               clip.sample_rate)
        return {"video": video, "audio": audio, "audio_present": present,
                "label": torch.tensor(int(self.labels[index]))}

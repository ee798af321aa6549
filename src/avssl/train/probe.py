"""Online probe: every N steps, leave-one-out kNN accuracy on detached backbone features of a small
labelled manifest, logged as `probe/knn_top1`, so a user sees during pretraining whether the features
improve. Clips are decoded once (centre window, centre crop) and kept in memory."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.manifest import Manifest
from avssl.data.sampling import evenly_spaced_starts
from avssl.errors import UsageError
from avssl.media import MediaError, MediaReader
from avssl.models.knn import leave_one_out_class_scores

log = logging.getLogger(__name__)


def load_probe_clips(manifest_path: str, config: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """(clips, labels): centre clips of the labelled usable rows (video uint8 [N, 3, T, S, S] or
    audio float [N, samples]) and int64 labels [N]."""
    try:
        manifest = Manifest.load(manifest_path)
    except (OSError, ValueError, KeyError) as err:
        raise UsageError(f"config key 'probe.manifest': cannot read {manifest_path}: {err}") from None
    modality = config.probe.modality
    manifest = manifest.filter(modality)
    manifest = manifest.take(np.flatnonzero(manifest.strings("label") != ""))
    if len(manifest) < 2 or len(manifest.label_index()) < 2:
        raise UsageError(f"config key 'probe.manifest': {manifest_path} needs at least 2 labelled files "
                         f"with {modality} in 2 classes")
    clip = config.data.clip
    seconds = clip.video_seconds if modality == "video" else clip.audio_window
    clips, labels = [], []
    for row, label in zip(manifest, manifest.label_ids()):
        start = evenly_spaced_starts(row.duration, seconds, 1, clip.fps)[0]
        try:
            with MediaReader(row.path, backend=config.data.backend) as reader:
                if modality == "video":
                    clips.append(read_video_clip(reader, start, clip.frames, clip.fps, config.data.video_augment, None))
                else:
                    clips.append(read_audio_clip(reader, start, seconds, clip.sample_rate))
        except MediaError as err:
            log.warning("online probe skips %s: %s", err.path, err.reason)
            continue
        labels.append(int(label))
    return torch.stack(clips), torch.tensor(labels, dtype=torch.int64)


class OnlineProbe(L.Callback):
    """kNN probe on rank 0 every `config.probe.every_n_steps` optimiser steps."""

    def __init__(self, config: Config, batch_size: int = 32) -> None:
        self.config = config
        self.batch_size = batch_size
        self.clips, self.labels = load_probe_clips(config.probe.manifest, config)
        log.info("online probe: %d clips in %d classes", len(self.labels), int(self.labels.max()) + 1)
        self.k = min(config.probe.k, len(self.labels) - 1)  # leave-one-out: the other clips vote
        if self.k < config.probe.k:
            log.warning("online probe: probe.k=%d but only %d clips: k is clamped to %d, so every other clip "
                        "votes and each prediction is the majority class of the rest", config.probe.k,
                        len(self.labels), self.k)

    @torch.no_grad()
    def features(self, pl_module: Any) -> torch.Tensor:
        was_training = pl_module.training
        pl_module.eval()
        try:
            out = []
            for chunk in self.clips.split(self.batch_size):
                chunk = chunk.to(pl_module.device)
                if self.config.probe.modality == "video":
                    out.append(pl_module.video_features(pl_module.video_input(chunk, train=False)))
                else:
                    out.append(pl_module.audio_features(pl_module.audio_input(chunk, train=False)))
            return torch.cat(out).float().cpu()
        finally:
            pl_module.train(was_training)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == 0 or step % self.config.probe.every_n_steps or not trainer.is_global_zero:
            return
        if getattr(self, "_last_step", None) == step:
            return  # accumulation batches share a step
        self._last_step = step
        labels = self.labels.numpy()
        # majority vote of the k nearest other clips, ties by avssl.models.knn's rule
        keys = leave_one_out_class_scores(self.features(pl_module).numpy(), labels, int(labels.max()) + 1, self.k,
                                          weighting="majority")
        accuracy = float(np.mean(keys.argmax(axis=1) == labels))
        log.info("step %d: online probe kNN top-1 %.4f", step, accuracy)
        # straight to the loggers, in the row of the step just trained (step - 1, as Lightning numbers
        # rows): pl_module.log from this hook would repeat the value in the next row as well
        for logger in trainer.loggers:
            logger.log_metrics({"probe/knn_top1": accuracy}, step=step - 1)

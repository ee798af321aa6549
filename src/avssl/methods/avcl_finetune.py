"""AVCL supervised fine-tuning: the AVClassifier (encoders + AMFM + linear head) for audio-visual action recognition.

A labelled file table gives one clip per file and epoch (a random synchronised window with random
crop when training, the centre window with a centre crop when evaluating), its audio and its class.
Files without audio are kept: their audio is a zero placeholder with `audio_present` False, which the
classifier masks (the audio encoder never sees it, AMFM ignores it), so their prediction depends on
the frames alone. Weights come from an avcl pretraining checkpoint with `load_pretrained`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avssl.config.schema import Config
from avssl.data.clip_io import read_video_clip
from avssl.data.dataset import FileTable, SampleContext
from avssl.errors import UsageError
from avssl.methods.avcl import clip_window, random_clip_start, read_audio_or_silence, read_video_views
from avssl.methods.base import PretrainMethod
from avssl.models.checkpoint import CheckpointMismatchError, first_difference, strip_wrapper_prefixes
from avssl.models.classifier import AVClassifier
from avssl.models.fusion import AMFM
from avssl.models.heads import LinearClassifier

log = logging.getLogger(__name__)


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


def centre_start(duration: float, span: float, fps: float) -> float:
    """Start of the window of `span` seconds in the middle of a file, on the 1/fps frame grid."""
    return float(np.floor(max(0.0, (duration - span) / 2) * fps) / fps)


class FinetuneRecipe:
    """One labelled sample: video uint8 [3, T, S, S], audio float [N], audio_present bool, label int64."""

    def __init__(self, labels: np.ndarray, config: Config, train: bool) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.clip = config.data.clip
        self.augment = config.data.video_augment
        self.spec = clip_window(config)
        self.seed = config.seed
        self.train = train

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]:
        index = ctx.index
        reader = ctx.reader()
        clip, a = self.clip, self.augment
        if self.train:
            start = ctx.key.start
            if start is None:
                start = random_clip_start(ctx.table, index, ctx.key.epoch, self.spec, self.seed)
            video = read_video_views(reader, start, clip.frames, clip.fps, a.size, a.crop_scale, a.crop_ratio,
                                     a.flip_p, 1, ctx.torch_generator())[0]
        else:
            start = centre_start(float(ctx.table.durations[index]), self.spec.span, clip.fps)
            video = read_video_clip(reader, start, clip.frames, clip.fps, a, None)
        audio, present = read_audio_or_silence(reader, bool(ctx.table.has_audio[index]), start, clip.audio_window,
                                               clip.sample_rate)
        return {"video": video, "audio": audio, "audio_present": present,
                "label": torch.tensor(int(self.labels[index]))}


class FinetuneMethod(PretrainMethod):
    """Audio-visual action recognition with the AVCL model: cross-entropy on AVClassifier logits.

    The classifier owns the encoders (state-dict keys `classifier.video_encoder.*`, ...);
    `video_encoder` / `audio_encoder` are views of them for the shared base (features, optimiser).
    """

    def __init__(self, config: Config, num_classes: int, class_names: Optional[Sequence[str]] = None) -> None:
        if num_classes < 2:
            raise UsageError(f"fine-tuning needs at least 2 classes, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise UsageError(f"{len(class_names)} class names for {num_classes} classes")
        super().__init__(config)
        # the base registered the encoders at top level; move them into the classifier so that each
        # weight has one state-dict key
        video_encoder = self._modules.pop("video_encoder")
        audio_encoder = self._modules.pop("audio_encoder")
        f, ft = self.params.fusion, self.params.finetune
        fusion = AMFM(video_encoder.out_dim, audio_encoder.out_dim, dim=f.dim, num_heads=f.num_heads,
                      num_layers=f.num_layers, ffn_ratio=f.ffn_ratio, dropout=f.dropout)
        head = LinearClassifier(fusion.out_dim, num_classes, dropout=ft.dropout)
        self.classifier = AVClassifier(video_encoder, audio_encoder, fusion, head)
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else None

    @property
    def video_encoder(self) -> nn.Module:  # type: ignore[override]
        return self.classifier.video_encoder

    @property
    def audio_encoder(self) -> nn.Module:  # type: ignore[override]
        return self.classifier.audio_encoder

    def recipe(self, labelled: LabelledTable, train: bool = True) -> FinetuneRecipe:  # type: ignore[override]
        if not isinstance(labelled, LabelledTable):
            raise TypeError(f"FinetuneMethod.recipe needs a LabelledTable, got {type(labelled).__name__}")
        return FinetuneRecipe(labelled.labels, self.config, train)

    def forward(self, video: torch.Tensor, waveform: torch.Tensor, audio_present: torch.Tensor,
                train: bool = False) -> torch.Tensor:
        """uint8 video [B, 3, T, H, W], waveform [B, N], audio_present [B] bool -> logits [B, classes]."""
        clips = self.video_input(video, train=train)
        log_mel = self.audio_input(waveform, train=train)
        return self.classifier(clips, log_mel, audio_present.to(device=clips.device, dtype=torch.bool))

    def _loss_and_accuracy(self, batch: dict[str, Any], train: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
        logits = self(batch["video"], batch["audio"], batch["audio_present"], train=train)
        labels = batch["label"].to(logits.device)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.params.finetune.label_smoothing)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        return loss, accuracy, len(labels)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, accuracy, batch_size = self._loss_and_accuracy(batch, train=True)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train/accuracy", accuracy, prog_bar=True, batch_size=batch_size)
        self.log("train/audio_missing", (~batch["audio_present"].bool()).float().sum(), batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, accuracy, batch_size = self._loss_and_accuracy(batch, train=False)
        self.log("val/loss", loss, batch_size=batch_size, sync_dist=True)
        self.log("val/accuracy", accuracy, prog_bar=True, batch_size=batch_size, sync_dist=True)
        return loss

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self(batch["video"], batch["audio"], batch["audio_present"], train=False)

    def load_pretrained(self, path: str | os.PathLike) -> list[str]:
        """Load the encoders (required) and AMFM (when present) from an avcl pretraining or
        fine-tuning checkpoint, or any checkpoint with `video_encoder.` / `audio_encoder.` weights.
        Returns the parts loaded; raises CheckpointMismatchError naming the first differing key."""
        if not os.path.isfile(path):
            raise UsageError(f"checkpoint {path} does not exist")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
        if not isinstance(state, dict):
            raise UsageError(f"checkpoint {path} holds no state dict")
        state = strip_wrapper_prefixes(state)
        loaded = []
        for part in ("video_encoder", "audio_encoder", "fusion"):
            target = getattr(self.classifier, part)
            sub: dict[str, torch.Tensor] = {}
            for prefix in (part, f"classifier.{part}"):
                sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
                if sub:
                    break
            if not sub:
                if part == "fusion":
                    log.info("checkpoint %s has no AMFM weights: the fusion starts from scratch", path)
                    continue
                raise CheckpointMismatchError(f"checkpoint {path} has no {part} weights "
                                              f"(looked under '{part}.' and 'classifier.{part}.')")
            difference = first_difference(sub, target.state_dict())
            if difference is not None:
                raise CheckpointMismatchError(f"checkpoint {path}: {part} does not match the model: {difference}")
            target.load_state_dict(sub, strict=True)
            loaded.append(part)
        return loaded

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["avssl_task"] = "finetune"
        checkpoint["avssl_num_classes"] = self.num_classes
        checkpoint["avssl_class_names"] = self.class_names

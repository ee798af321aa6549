"""AVCL supervised fine-tuning: the AVClassifier (encoders + AMFM + linear head) for audio-visual action recognition.

Samples come from avssl.data.recipes.finetune (one labelled clip per file and epoch). Files without
audio are kept: their audio is a zero placeholder with `audio_present` False, which the classifier
masks (the audio encoder never sees it, AMFM ignores it), so their prediction depends on the frames
alone. Weights come from an avcl pretraining checkpoint's state dict with `load_pretrained`.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avssl.config.schema import Config
from avssl.data.recipes.finetune import FinetuneRecipe, LabelledTable
from avssl.errors import UsageError
from avssl.methods.base import PretrainMethod
from avssl.models.classifier import AVClassifier
from avssl.models.fusion import AMFM
from avssl.models.heads import LinearClassifier
from avssl.models.state_dict import CheckpointMismatchError, load_submodule

log = logging.getLogger(__name__)


class AVCLFinetune(PretrainMethod):
    """Audio-visual action recognition with the AVCL model: cross-entropy on AVClassifier logits.

    The classifier owns the encoders (state-dict keys `classifier.video_encoder.*`, ...);
    `video_encoder` / `audio_encoder` are views of them for the shared base (features, optimiser).
    """

    recipe_class = FinetuneRecipe

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
            raise TypeError(f"AVCLFinetune.recipe needs a LabelledTable, got {type(labelled).__name__}")
        return FinetuneRecipe(labelled, self.config, train)

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

    def load_pretrained(self, state: Mapping[str, torch.Tensor], source: str) -> list[str]:
        """Load the encoders (required) and AMFM (when present) from the state dict of an avcl
        pretraining or fine-tuning checkpoint (`source` names it in errors), or any state dict with
        `video_encoder.` / `audio_encoder.` weights. Returns the parts loaded; raises
        CheckpointMismatchError naming the first differing key."""
        loaded = []
        for part in ("video_encoder", "audio_encoder", "fusion"):
            try:
                load_submodule(getattr(self.classifier, part), state, (part, f"classifier.{part}"), source)
            except CheckpointMismatchError:
                if part == "fusion" and not any(k.startswith(("fusion.", "classifier.fusion.")) for k in state):
                    log.info("checkpoint %s has no AMFM weights: the fusion starts from scratch", source)
                    continue
                raise
            loaded.append(part)
        return loaded

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["avssl_task"] = "finetune"
        checkpoint["avssl_num_classes"] = self.num_classes
        checkpoint["avssl_class_names"] = self.class_names

"""Supervised fine-tuning models: one pretrained encoder + dropout + a linear head (VideoClassifier,
AudioClassifier), trained whole (`finetune.mode=full`) or as a linear classifier on the frozen encoder
(`linear`: the encoder's weights fixed and in eval mode, so its batch-norm statistics stay those of
pretraining); and the choice between them and the AVCL audio-visual classifier (AVCLFinetune).

Every fine-tuning model answers the same calls: `recipe_class` (its training sample), `reads` (the
streams a test clip needs), `load_pretrained(state, source)`, `training_step` and
`predict_logits(video, audio, audio_present)` (evaluation logits of prepared batches)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avssl.config.finetune import FinetuneSection
from avssl.config.schema import Config, MethodSpec
from avssl.config.typed import ConfigError, from_dict
from avssl.data.recipes.finetune import AudioFinetuneRecipe, FinetuneRecipe
from avssl.errors import UsageError
from avssl.methods.avcl_finetune import AVCLFinetune
from avssl.methods.base import PretrainMethod
from avssl.models.heads import LinearClassifier
from avssl.models.state_dict import load_submodule


class EncoderClassifier(PretrainMethod):
    """The `modality` encoder of the config + LinearClassifier: cross-entropy on its logits [B, classes]."""

    modality: ClassVar[str]
    reads: ClassVar[tuple[str, ...]]

    def __init__(self, config: Config, num_classes: int, class_names: Optional[Sequence[str]] = None, *,
                 dropout: float = 0.5, label_smoothing: float = 0.0, frozen: bool = False) -> None:
        if num_classes < 2:
            raise UsageError(f"fine-tuning needs at least 2 classes, got {num_classes}")
        super().__init__(config)
        # the other modality's encoder is not part of this model (nor of its optimiser or DDP)
        del self._modules["audio_encoder" if self.modality == "video" else "video_encoder"]
        self.encoder_key = f"{self.modality}_encoder"
        self.head = LinearClassifier(self.encoder.out_dim, num_classes, dropout)
        self.label_smoothing = label_smoothing
        self.frozen = frozen
        if frozen:
            self.encoder.requires_grad_(False)
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else None

    @property
    def encoder(self) -> nn.Module:
        return getattr(self, self.encoder_key)

    def train(self, mode: bool = True) -> "EncoderClassifier":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # linear: batch-norm statistics and dropout of the encoder stay fixed
        return self

    def forward(self, video: Optional[torch.Tensor], audio: Optional[torch.Tensor], audio_present: Any = None,
                train: bool = False) -> torch.Tensor:
        """uint8 video [B, 3, T, H, W] or waveform [B, N] (the modality's) -> logits [B, classes]."""
        x = self.video_input(video, train=train) if self.modality == "video" else self.audio_input(audio, train=train)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            features = self.encoder(x)
        return self.head(features)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch.get("video"), batch.get("audio"), train=True)
        labels = batch["label"].to(logits.device)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(labels))
        self.log("train/accuracy", accuracy, prog_bar=True, batch_size=len(labels))
        return loss

    def predict_logits(self, video: Optional[torch.Tensor], audio: Optional[torch.Tensor],
                       audio_present: Any = None) -> torch.Tensor:
        return self(video, audio, audio_present, train=False)

    def load_pretrained(self, state: Mapping[str, torch.Tensor], source: str) -> list[str]:
        """Load the encoder from a state dict with `<modality>_encoder.` weights (a pretraining or
        fine-tuning checkpoint); CheckpointMismatchError names the first differing key."""
        load_submodule(self.encoder, state, (self.encoder_key, f"classifier.{self.encoder_key}"), source)
        return [self.encoder_key]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["avssl_task"] = "finetune"
        checkpoint["avssl_num_classes"] = self.num_classes
        checkpoint["avssl_class_names"] = self.class_names


class VideoClassifier(EncoderClassifier):
    modality = "video"
    reads = ("video",)
    recipe_class = FinetuneRecipe


class AudioClassifier(EncoderClassifier):
    modality = "audio"
    reads = ("audio",)
    recipe_class = AudioFinetuneRecipe


class AVClassifierFinetune(AVCLFinetune):
    """AVCLFinetune with the calls of the fine-tuning models (its test clips read video and audio)."""

    reads = ("video", "audio")

    def predict_logits(self, video: torch.Tensor, audio: torch.Tensor, audio_present: torch.Tensor) -> torch.Tensor:
        return self(video, audio, audio_present, train=False)


def classifier_kind(config: Config, section: FinetuneSection) -> str:
    """video, audio or av: `finetune.model`, with auto = av for an avcl model, else video."""
    if section.model != "auto":
        return section.model
    return "av" if config.method.name == "avcl" else "video"


def classifier_class(config: Config, section: FinetuneSection) -> type:
    """The model class of `section` on the network `config` describes (ConfigError naming
    finetune.model for an av classifier on a model other than avcl)."""
    kind = classifier_kind(config, section)
    if kind == "av" and config.method.name != "avcl":
        raise ConfigError(f"config key 'finetune.model': av needs an avcl model (its fusion and head), "
                          f"this one is {config.method.name}; use finetune.model=video or audio")
    return {"video": VideoClassifier, "audio": AudioClassifier, "av": AVClassifierFinetune}[kind]


def build_classifier(config: Config, section: FinetuneSection, num_classes: int,
                     class_names: Optional[Sequence[str]] = None) -> PretrainMethod:
    """The fine-tuning model of `section` on the network `config` describes (weights fresh)."""
    cls = classifier_class(config, section)
    if cls is AVClassifierFinetune:
        params = config.method.params
        params = dataclasses.replace(params, finetune=dataclasses.replace(
            params.finetune, dropout=section.dropout, label_smoothing=section.label_smoothing))
        return cls(dataclasses.replace(config, method=MethodSpec(config.method.name, params)), num_classes, class_names)
    return cls(config, num_classes, class_names, dropout=section.dropout, label_smoothing=section.label_smoothing,
               frozen=section.mode == "linear")


def classifier_from_checkpoint(config: Config, payload: Mapping[str, Any]) -> PretrainMethod:
    """The model a fine-tuning checkpoint holds (its `avssl_finetune` section; a checkpoint without
    one is of the AVCL classifier, as earlier versions wrote), weights not yet loaded."""
    section = payload.get("avssl_finetune")
    section = from_dict(FinetuneSection, dict(section) if section else {"model": "av"}, "finetune")
    return build_classifier(config, section, int(payload["avssl_num_classes"]), payload.get("avssl_class_names"))

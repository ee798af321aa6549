"""AVCL (Liu, Tan, Lan 2023): SelfCL contrastive pretraining of an AMFM-fused audio-visual model with CGRA alignment.

One sample is a synchronised clip seen twice: two spatially augmented crops of the same frames (one
decode) and the audio of the same window (SpecAugmented twice on the device). For each view the
encoders give feature maps; their pooled features are aligned across modalities by CGRA and
contrasted across modalities by InfoNCE (video i <-> audio i), and AMFM fuses the two token maps
into one clip vector whose two views are contrasted with each other (NT-Xent). Clips without audio
are kept: they enter only the fused contrast, with their audio masked out of AMFM.

The paper's equations are not available here; how AMFM, CGRA and SelfCL are formulated is an
assumption documented in docs/methods.md. The data recipe is avssl.data.recipes.avcl; supervised
fine-tuning of the same model for audio-visual action recognition is avssl.methods.avcl_finetune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from avssl.config.typed import require
from avssl.data.recipes.avcl import AVCLRecipe
from avssl.losses.infonce import (
    cross_modal_info_nce,
    cross_modal_top1,
    intra_modal_info_nce,
    pair_mask,
)
from avssl.methods.base import PretrainMethod
from avssl.models.alignment import CGRA
from avssl.models.fusion import AMFM, tokens_from_map


@dataclass
class FusionParams:
    """AMFM options (avssl.models.fusion.AMFM). All assumed: the paper's values are not available."""

    dim: int = 256
    num_heads: int = 4
    num_layers: int = 1
    ffn_ratio: float = 2.0
    dropout: float = 0.0

    def validate(self, where: str) -> None:
        require(self.dim > 0 and self.num_heads > 0 and self.dim % self.num_heads == 0, f"{where}.dim",
                f"must be positive and divisible by num_heads ({self.num_heads}), got {self.dim}")
        require(self.num_layers > 0, f"{where}.num_layers", "must be positive")
        require(self.ffn_ratio > 0, f"{where}.ffn_ratio", "must be positive")
        require(0 <= self.dropout < 1, f"{where}.dropout", "must be in [0, 1)")


@dataclass
class AlignmentParams:
    """CGRA options (avssl.models.alignment.CGRA); `off_diagonal_weight` 5e-3 is Barlow Twins' (assumed)."""

    dim: int = 128
    hidden_dim: int = 512
    num_layers: int = 2
    off_diagonal_weight: float = 5e-3

    def validate(self, where: str) -> None:
        require(self.dim > 0, f"{where}.dim", "must be positive")
        require(self.hidden_dim > 0, f"{where}.hidden_dim", "must be positive")
        require(self.num_layers > 0, f"{where}.num_layers", "must be positive")
        require(self.off_diagonal_weight >= 0, f"{where}.off_diagonal_weight", "must be >= 0")


@dataclass
class LossWeights:
    """Weights of the three SelfCL terms in the total loss (all 1.0, assumed)."""

    cross_modal: float = 1.0
    fused: float = 1.0
    alignment: float = 1.0

    def validate(self, where: str) -> None:
        for name in ("cross_modal", "fused", "alignment"):
            require(getattr(self, name) >= 0, f"{where}.{name}", "must be >= 0")
        require(self.cross_modal + self.fused + self.alignment > 0, where, "at least one weight must be positive")


@dataclass
class FinetuneParams:
    """Supervised fine-tuning (avssl.methods.avcl_finetune.AVCLFinetune): dropout before the linear head, label smoothing."""

    dropout: float = 0.5
    label_smoothing: float = 0.0

    def validate(self, where: str) -> None:
        require(0 <= self.dropout < 1, f"{where}.dropout", "must be in [0, 1)")
        require(0 <= self.label_smoothing < 1, f"{where}.label_smoothing", "must be in [0, 1)")


@dataclass
class AVCLParams:
    """`method:` section of an avcl config.

    Assumed defaults: cross-modal InfoNCE temperature 0.07 (the field's usual value), fused-view
    NT-Xent temperature 0.1 (SimCLR / CVRL); clips of the same source (`group`) are not negatives of
    each other (`exclude_same_group`).
    """

    cross_modal_temperature: float = 0.07
    fused_temperature: float = 0.1
    exclude_same_group: bool = True
    weights: LossWeights = field(default_factory=LossWeights)
    fusion: FusionParams = field(default_factory=FusionParams)
    alignment: AlignmentParams = field(default_factory=AlignmentParams)
    finetune: FinetuneParams = field(default_factory=FinetuneParams)

    def validate(self, where: str) -> None:
        require(self.cross_modal_temperature > 0, f"{where}.cross_modal_temperature", "must be positive")
        require(self.fused_temperature > 0, f"{where}.fused_temperature", "must be positive")


# ----------------------------------------------------------------------------- device side

def encode_audio_present(encoder: torch.nn.Module, log_mel: torch.Tensor,
                         present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio encoder on the clips with audio only (a placeholder never reaches it nor its BN
    statistics). log_mel [B, 1, F, T], present [B] bool -> (tokens [B, Na, C] zero for absent
    clips, pooled [B, C] zero for absent clips)."""
    batch = log_mel.shape[0]
    if not bool(present.any()):
        zeros = log_mel.new_zeros(batch, 1, encoder.out_dim)
        return zeros, zeros[:, 0]
    feature_map = encoder(log_mel[present], return_map=True)
    encoded = tokens_from_map(feature_map)
    tokens = encoded.new_zeros(batch, *encoded.shape[1:])
    tokens[present] = encoded
    pooled = encoded.new_zeros(batch, encoded.shape[2])
    pooled[present] = encoded.mean(dim=1)
    return tokens, pooled


class ViewLosses(NamedTuple):
    """One view's cross-modal InfoNCE, CGRA loss and video -> audio top-1 retrieval accuracy in the
    batch, and the joint-space embeddings of its clips with audio (for the collapse watch; none when
    fewer than 2 clips have audio)."""

    cross_modal_nce: torch.Tensor
    cgra: torch.Tensor
    xmodal_top1: torch.Tensor
    embeddings: dict[str, torch.Tensor]


def zero_loss(*tensors: torch.Tensor) -> torch.Tensor:
    """0 attached to the graph of `tensors`, so every parameter still gets a (zero) gradient under DDP."""
    return sum(t.sum() for t in tensors) * 0.0


class AVCL(PretrainMethod):
    """AVCL pretraining: encoders + AMFM + CGRA + SelfCL (cross-modal and fused-view contrast)."""

    Params = AVCLParams
    recipe_class = AVCLRecipe
    loss_terms = ("cross_modal_nce", "fused_nce", "cgra")

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        p = self.params
        v_dim, a_dim = self.video_encoder.out_dim, self.audio_encoder.out_dim
        f = p.fusion
        self.fusion = AMFM(v_dim, a_dim, dim=f.dim, num_heads=f.num_heads, num_layers=f.num_layers,
                           ffn_ratio=f.ffn_ratio, dropout=f.dropout)
        g = p.alignment
        self.alignment = CGRA(v_dim, a_dim, dim=g.dim, hidden_dim=g.hidden_dim, num_layers=g.num_layers,
                              off_diagonal_weight=g.off_diagonal_weight)
        self.video_head = self.projection(v_dim)
        self.audio_head = self.projection(a_dim)
        self.fused_head = self.projection(f.dim)

    @classmethod
    def chance_levels(cls, config: Any) -> dict[str, float]:
        return {"train/xmodal_top1": 1.0 / config.data.batch_size}

    def encode_view(self, video: torch.Tensor, log_mel: torch.Tensor, present: torch.Tensor) -> dict[str, torch.Tensor]:
        """Prepared video [B, 3, T, H, W], log-mel [B, 1, F, T], present [B] bool ->
        pooled encoder features `video` [B, Cv] / `audio` [B, Ca] (before fusion: CGRA and the
        cross-modal contrast must compare what each encoder sees alone) and `fused` [B, fusion dim]."""
        video_map = self.video_encoder(video, return_map=True)
        video_tokens = tokens_from_map(video_map)
        audio_tokens, audio_pooled = encode_audio_present(self.audio_encoder, log_mel, present)
        fused = self.fusion(video_tokens, audio_tokens.to(video_tokens.dtype), present).fused
        return {"video": video_tokens.mean(dim=1), "audio": audio_pooled, "fused": fused}

    def view_losses(self, out: dict[str, torch.Tensor], present: torch.Tensor,
                    exclude: torch.Tensor | None) -> ViewLosses:
        """The cross-modal terms of one view over the clips with audio."""
        alignment = self.alignment(out["video"], out["audio"], present)
        if int(present.sum()) < 2:
            nan = torch.tensor(float("nan"), device=present.device)
            return ViewLosses(zero_loss(out["video"], out["audio"], *self.video_head.parameters(),
                                        *self.audio_head.parameters()), alignment, nan, {})
        video = self.video_head(out["video"][present])
        audio = self.audio_head(out["audio"][present])
        if exclude is not None:
            exclude = exclude[present][:, present]
        nce = cross_modal_info_nce(video, audio, self.params.cross_modal_temperature, exclude_mask=exclude)
        return ViewLosses(nce, alignment, cross_modal_top1(video.detach(), audio.detach()),
                          {"video": video, "audio": audio})

    def selfcl_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Every SelfCL term of a batch: video uint8 [B, V=2, 3, T, H, W], audio [B, N],
        audio_present [B] bool, group [B]. Returns the weighted total under `loss`."""
        p = self.params
        clips, waveform = batch["video"], batch["audio"]
        present = batch["audio_present"].to(device=clips.device, dtype=torch.bool)
        exclude = pair_mask(batch["group"], batch["group"]) if p.exclude_same_group else None
        views = []
        for view in range(clips.shape[1]):
            video = self.video_input(clips[:, view], train=self.training, stream=view)
            log_mel = self.audio_input(waveform, train=self.training, stream=view)
            views.append(self.encode_view(video, log_mel, present))
        per_view = [self.view_losses(out, present, exclude) for out in views]
        cross_modal = torch.stack([v.cross_modal_nce for v in per_view]).mean()
        alignment = torch.stack([v.cgra for v in per_view]).mean()
        accuracy = torch.stack([v.xmodal_top1 for v in per_view]).mean()
        fused = intra_modal_info_nce(self.fused_head(views[0]["fused"]), self.fused_head(views[1]["fused"]),
                                     p.fused_temperature, exclude_mask=exclude)
        w = p.weights
        loss = w.cross_modal * cross_modal + w.fused * fused + w.alignment * alignment
        return {"loss": loss, "cross_modal_nce": cross_modal, "fused_nce": fused, "cgra": alignment,
                "xmodal_top1": accuracy, "audio_missing": (~present).float().sum(),
                "embeddings": per_view[0].embeddings}  # the first view's, for the collapse watch

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if batch["video"].dim() != 6 or batch["video"].shape[1] != AVCLRecipe.VIEWS:
            raise ValueError(f"avcl expects video [B, {AVCLRecipe.VIEWS}, 3, T, H, W] (two views), "
                             f"got {list(batch['video'].shape)}")
        out = self.selfcl_losses(batch)
        batch_size = batch["video"].shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=batch_size)
        for name in ("cross_modal_nce", "fused_nce", "cgra", "xmodal_top1", "audio_missing"):
            self.log(f"train/{name}", out[name].detach(), batch_size=batch_size)
        self.watch_collapse(out["embeddings"], batch_size)
        return out["loss"]

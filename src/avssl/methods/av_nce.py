"""av-nce: the field's plain audio-visual baseline (AVID / L3-style), the yardstick of the paper methods.

Symmetric cross-modal InfoNCE (video -> audio and audio -> video) between a video clip and the audio
of the same instant, with the other clips of the batch as negatives (clips of the same source are not
negatives of each other), on the same encoders, projection heads and augmentations as the other
methods. With `gather_distributed` the negatives come from every DDP rank. The data recipe is
avssl.data.recipes.sync_clip.

`spatial_pool: max` compares the audio with each position of the video encoder's last map
(PretrainMethod.embed_video_positions) and keeps the best position, the multiple-instance contrast of
sound-source localisation (EZ-VSL, Mo & Morgado 2022; AVOL-Net, Arandjelovic & Zisserman 2018): a
clip and its sound agree when the sound comes from somewhere in the frame, so the map of the
per-position similarity, what `avssl localize` draws, is what the loss trains. Its clip embedding
(embed_video, for retrieval and probes of the joint space) is the normalised mean of the positions'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from avssl.config.typed import require
from avssl.data.recipes.sync_clip import SyncClipRecipe
from avssl.losses.infonce import cross_modal_info_nce, cross_modal_top1, gathered_cross_modal_info_nce, pair_mask
from avssl.methods.base import PretrainMethod

SPATIAL_POOLS = ("mean", "max")


@dataclass
class AVNCEParams:
    """`method:` section of an av-nce config: InfoNCE temperature 0.07 (assumed, the field's usual value);
    clips of one source (`group`) are not each other's negatives; negatives gathered across DDP
    ranks when `gather_distributed` (the paper-scale config turns it on); `spatial_pool` "mean" (the
    pooled clip embedding) or "max" (the best position of the video map, see the module docstring)."""

    temperature: float = 0.07
    exclude_same_group: bool = True
    gather_distributed: bool = False
    spatial_pool: str = "mean"

    def validate(self, where: str) -> None:
        require(self.temperature > 0, f"{where}.temperature", f"must be positive, got {self.temperature}")
        require(self.spatial_pool in SPATIAL_POOLS, f"{where}.spatial_pool",
                f"must be one of {', '.join(SPATIAL_POOLS)}, got {self.spatial_pool!r}")


class AVNCE(PretrainMethod):
    """Cross-modal InfoNCE on projected clip embeddings."""

    Params = AVNCEParams
    recipe_class = SyncClipRecipe
    loss_terms = ("audio_video_nce",)

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.video_head = self.projection(self.video_encoder.out_dim)
        self.audio_head = self.projection(self.audio_encoder.out_dim)

    @classmethod
    def chance_levels(cls, config: Any) -> dict[str, float]:
        return {"train/av_top1": 1.0 / config.data.batch_size}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        p = self.params
        clips = self.video_input(batch["video"], train=self.training)
        if p.spatial_pool == "max":
            video = self.embed_video_positions(clips).flatten(1, 2)  # [B, P, E]
        else:
            video = self.video_head(self.video_encoder(clips))
        audio = self.audio_head(self.audio_encoder(self.audio_input(batch["audio"], train=self.training)))
        # without same-group exclusion every clip is its own group: only the positive pair is special
        groups = batch["group"] if p.exclude_same_group else torch.arange(len(video), device=video.device)
        loss = self.contrast(video, audio, groups)
        b = len(video)
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        self.log("train/audio_video_nce", loss, batch_size=b)
        self.log("train/av_top1", cross_modal_top1(video.detach(), audio.detach()), batch_size=b)
        self.watch_collapse({"video": video, "audio": audio}, b)
        return loss

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        if self.params.spatial_pool == "max":
            return F.normalize(self.embed_video_positions(clips).mean(dim=(1, 2)), dim=1)
        return super().embed_video(clips)

    def contrast(self, video: torch.Tensor, audio: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """The InfoNCE of embeddings [B, E] (video also [B, P, E]) whose groups [B] are not each other's
        negatives: over this process's batch, or over every rank's with gather_distributed."""
        if self.params.gather_distributed:
            return gathered_cross_modal_info_nce(video, audio, self.params.temperature, group_ids=groups)
        exclude = pair_mask(groups, groups) & ~torch.eye(len(groups), dtype=torch.bool, device=groups.device)
        return cross_modal_info_nce(video, audio, self.params.temperature, exclude_mask=exclude)

"""AVTS (Korbar, Tran, Torresani 2018): tell in-sync from out-of-sync audio-video pairs.

Positives: a video clip and the audio at the same instant. Negatives: easy (the audio of another
sample of the batch, from another source: one per video as in the paper, or all of them) and hard
(the same video's audio shifted by at least `min_offset` seconds), mixed by a curriculum that starts
with easy negatives only. Loss: the contrastive margin loss on the distance of the L2-normalised
video and audio embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F

from avssl.config.typed import require
from avssl.data.recipes.avts import AVTSRecipe
from avssl.data.streams import StepStream
from avssl.losses.margin import AVTS_MARGIN, contrastive_margin_loss
from avssl.methods.base import PretrainMethod
from avssl.methods.curriculum import HardNegativeCurriculum


@dataclass
class CurriculumParams:
    easy_steps: int = 1000
    ramp_steps: int = 0
    final_hard_share: float = 0.25

    def validate(self, where: str) -> None:
        require(self.easy_steps >= 0, f"{where}.easy_steps", "must be >= 0")
        require(self.ramp_steps >= 0, f"{where}.ramp_steps", "must be >= 0")
        require(0 <= self.final_hard_share <= 1, f"{where}.final_hard_share", "must be in [0, 1]")


@dataclass
class AVTSParams:
    """`method:` section of an avts config.

    easy_negatives: "one" (the paper's pairing: each video has one negative, the audio of the next
    batch row from another source, or its hard negative) or "all" (assumed for CPU-scale runs: every
    audio of the batch from another source is a negative of every video, so a batch of B gives about
    B * (B - 1) negative pairs instead of B for the same encoder time; positives and negatives then
    weigh half each in the loss).
    """

    margin: float = AVTS_MARGIN
    easy_negatives: str = "one"
    min_offset: float = 0.5
    max_offset: Optional[float] = None
    curriculum: CurriculumParams = field(default_factory=CurriculumParams)

    def validate(self, where: str) -> None:
        require(self.margin > 0, f"{where}.margin", "must be positive")
        require(self.easy_negatives in ("one", "all"), f"{where}.easy_negatives", "must be 'one' or 'all'")
        require(self.min_offset >= 0, f"{where}.min_offset", "must be >= 0")
        require(self.max_offset is None or self.max_offset >= self.min_offset, f"{where}.max_offset",
                "must be >= min_offset")


class AVTS(PretrainMethod):
    """AVTS: video and audio embeddings whose distance is small for in-sync pairs."""

    Params = AVTSParams
    recipe_class = AVTSRecipe

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.video_head = self.projection(self.video_encoder.out_dim)
        self.audio_head = self.projection(self.audio_encoder.out_dim)
        c = self.params.curriculum
        self.curriculum = HardNegativeCurriculum(c.easy_steps, c.final_hard_share, c.ramp_steps)

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video_head(self.video_encoder(clips)), dim=1)

    def embed_audio(self, log_mel: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_head(self.audio_encoder(log_mel)), dim=1)

    def negative_audio_index(self, groups: torch.Tensor, has_hard: torch.Tensor, hard_share: float) -> tuple[torch.Tensor, torch.Tensor]:
        """For each sample, whether its negative is hard, and the batch row whose audio is its easy
        negative (the next row from another group; itself when no such row exists)."""
        b = groups.shape[0]
        gen = self.step_generator(StepStream.NEGATIVE_CHOICE)
        use_hard = (torch.rand(b, generator=gen) < hard_share).to(groups.device) & has_hard
        rows = torch.arange(b, device=groups.device)
        easy = rows.clone()
        for shift in range(1, b):
            candidate = (rows + shift) % b
            free = (easy == rows) & (groups[candidate] != groups)
            easy = torch.where(free, candidate, easy)
        return use_hard, easy

    def embed_pairs(self, batch: dict[str, torch.Tensor], hard_share: float) -> dict[str, torch.Tensor]:
        """L2-normalised embeddings of a batch's pairs: `video`, its in-sync `audio` and its `negative`
        audio [B, E]; `use_hard` [B] (the negative is the hard one) and `valid_negative` [B] (it exists)."""
        use_hard, easy = self.negative_audio_index(batch["group"], batch["has_hard"], hard_share)
        rows = use_hard.nonzero(as_tuple=True)[0]
        b = len(use_hard)
        video = self.embed_video(self.video_input(batch["video"], train=self.training))
        # the hard negatives in use go through the audio encoder in the same batch as the in-sync audio
        # (one set of batch-norm statistics for both, and no encoder time on audio never compared)
        waves = torch.cat([batch["audio"], batch["audio_hard"][rows]])
        embedded = self.embed_audio(self.audio_input(waves, train=self.training))
        audio = embedded[:b]
        negative = audio[easy].index_put((rows,), embedded[b:])
        valid_negative = use_hard | (easy != torch.arange(len(easy), device=easy.device))
        return {"video": video, "audio": audio, "negative": negative, "valid_negative": valid_negative,
                "use_hard": use_hard}

    def margin_loss(self, out: dict[str, torch.Tensor], groups: torch.Tensor) -> torch.Tensor:
        """The contrastive margin loss over the positives and the negatives `easy_negatives` picks."""
        video, audio, margin = out["video"], out["audio"], self.params.margin
        if self.params.easy_negatives == "one":
            keep = out["valid_negative"]
            pairs_video = torch.cat([video, video[keep]])
            pairs_audio = torch.cat([audio, out["negative"][keep]])
            is_positive = torch.cat([torch.ones(len(video)), torch.zeros(int(keep.sum()))]).to(video.device)
            return contrastive_margin_loss(pairs_video, pairs_audio, is_positive, margin)
        rows, cols = (groups[:, None] != groups[None, :]).nonzero(as_tuple=True)
        hard = out["use_hard"]
        negative_video = torch.cat([video[rows], video[hard]])
        negative_audio = torch.cat([audio[cols], out["negative"][hard]])
        positive = contrastive_margin_loss(video, audio, torch.ones(len(video), device=video.device), margin)
        if len(negative_video) == 0:
            return positive
        negative = contrastive_margin_loss(negative_video, negative_audio,
                                           torch.zeros(len(negative_video), device=video.device), margin)
        return 0.5 * (positive + negative)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        hard_share = self.curriculum.hard_share(self.global_step)
        out = self.embed_pairs(batch, hard_share)
        keep = out["valid_negative"]
        loss = self.margin_loss(out, batch["group"])
        with torch.no_grad():
            d_pos = (out["video"] - out["audio"]).norm(dim=1)
            d_neg = (out["video"] - out["negative"]).norm(dim=1)
            accuracy = ((d_pos < d_neg).float()[keep]).mean() if keep.any() else torch.tensor(float("nan"))
        batch_size = len(out["video"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train/sync_accuracy", accuracy, batch_size=batch_size)
        self.log("curriculum/hard_share", hard_share, batch_size=batch_size)
        self.log("curriculum/hard_negatives", out["use_hard"].float().sum(), batch_size=batch_size)
        return loss

"""AVTS (Korbar, Tran, Torresani 2018): tell in-sync from out-of-sync audio-video pairs.

Positives: a video clip and the audio at the same instant. Negatives: easy (the audio of another
sample of the batch, from another source: one per video as in the paper, or all of them) and hard
(the same file's audio, shifted from this very video clip by at least `min_offset` seconds of gap),
mixed by a curriculum that starts with easy negatives only. Loss: the contrastive margin loss on the
distance of the L2-normalised video and audio embeddings (each from time bins of its encoder's map with
`audio_time_bins` / `video_time_bins`: sync is about when), or with `spatial_pool: max` from the
position of the video map nearest to the audio (sync is then also about where; with `moving_share`
among the positions where the frames change most). The data recipe is
avssl.data.recipes.avts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F

from avssl.config.typed import require
from avssl.data.recipes.avts import AVTSRecipe, hard_min_offset
from avssl.data.streams import StepStream
from avssl.errors import UsageError
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
    batch row from another source, or its hard negative, so the curriculum's hard share is the share
    of negatives that are hard) or "all" (assumed for CPU-scale runs: every audio of the batch from
    another source is a negative of every video, about B * (B - 1) pairs for the encoder time of B;
    the negative term is then (1 - h) x the mean cost of the easy pairs + h x the mean cost of the
    hard ones, h the curriculum's hard share; positives and negatives weigh half each).
    min_offset: the gap in seconds between a hard negative's audio window and the in-sync one (they
    share no sample), or with `hard_overlap` the distance between their starts. max_offset: the
    largest distance between the two starts (null: as far as the file allows).
    audio_time_bins: the audio embedding's input is the audio encoder's map averaged over frequency
    and cut into this many equal time bins (concatenated), instead of its mean over the whole window.
    Whether audio is in sync is a question of when its events happen, and a mean over time keeps what
    sounds but not when. 1: the pooled features (every other method).
    video_time_bins: the same for the video embedding: the video encoder's map averaged over space and
    cut into this many time bins. It needs an encoder whose map keeps time (mc3_18 keeps every frame;
    R(2+1)D and R3D halve it in stages 2-4, so 8 frames end in one step). For either modality a map
    with fewer time steps than bins is an error naming the key (see time_bins), not a silent repeat.
    spatial_pool: "mean" (the video embedding from the map's spatial mean) or "max" (every position of
    the map goes through the head, as embed_video_positions, and each pair's distance is that of the
    position nearest to its audio: multiple instances, as sound-localization methods train; the map
    `avssl localize` draws is then the one the loss trains). embed_video, used by sync-check and
    feature extraction, keeps the spatial mean either way.
    moving_share: with `spatial_pool: max`, the nearest position is chosen among this share of the
    map's positions only: those under which the clip's frames change most (moving_positions). A
    motion prior: a sound comes from something that moves, so the position that answers for it should
    stand on a moving thing, not wherever in its receptive field the net happens to see the event.
    null: among all positions.
    """

    margin: float = AVTS_MARGIN
    easy_negatives: str = "one"
    min_offset: float = 0.5
    max_offset: Optional[float] = None
    hard_overlap: bool = False
    audio_time_bins: int = 1
    video_time_bins: int = 1
    spatial_pool: str = "mean"
    moving_share: Optional[float] = None
    curriculum: CurriculumParams = field(default_factory=CurriculumParams)

    def validate(self, where: str) -> None:
        require(self.margin > 0, f"{where}.margin", "must be positive")
        require(self.easy_negatives in ("one", "all"), f"{where}.easy_negatives", "must be 'one' or 'all'")
        require(self.min_offset >= 0, f"{where}.min_offset", "must be >= 0")
        require(self.audio_time_bins >= 1, f"{where}.audio_time_bins", "must be >= 1")
        require(self.video_time_bins >= 1, f"{where}.video_time_bins", "must be >= 1")
        require(self.spatial_pool in ("mean", "max"), f"{where}.spatial_pool",
                f"must be 'mean' or 'max', got {self.spatial_pool!r}")
        if self.moving_share is not None:
            require(0 < self.moving_share <= 1, f"{where}.moving_share", "must be in (0, 1] or null")
            require(self.spatial_pool == "max", f"{where}.moving_share", "needs spatial_pool: max")
        require(self.max_offset is None or self.max_offset >= self.min_offset, f"{where}.max_offset",
                "must be >= min_offset")


def time_bins(timeline: torch.Tensor, bins: int, modality: str, encoder: str, remedy: str) -> torch.Tensor:
    """An encoder's map [..., C, T'] -> [..., C * bins]: T' cut into `bins` equal time bins (means),
    concatenated. UsageError naming `method.<modality>_time_bins` when T' < bins: pooling would then
    repeat time steps and the head would see the same instant as two."""
    steps = timeline.shape[-1]
    if steps < bins:
        raise UsageError(f"method.{modality}_time_bins is {bins} but the {modality} encoder {encoder!r} ends in "
                         f"{steps} time step(s) for these clips: use {remedy} or fewer bins")
    lead = timeline.shape[:-2]
    binned = F.adaptive_avg_pool1d(timeline.reshape(-1, *timeline.shape[-2:]), bins)
    return binned.reshape(*lead, -1)


def nearest_position(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Video embeddings [N, E] as they are, or per position [N, P, E]: each row's position nearest (in
    Euclidean distance) to its audio [N, E], [N, E]. The gradient flows through the chosen position only."""
    if video.dim() == 2:
        return video
    nearest = (video - audio[:, None]).pow(2).sum(dim=-1).argmin(dim=1)
    return video[torch.arange(len(video), device=video.device), nearest]


def moving_positions(video: torch.Tensor, clips: torch.Tensor, share: float) -> torch.Tensor:
    """Per-position video embeddings [B, H', W', E] -> [B, K, E]: the K = ceil(share x H' x W')
    positions under which the prepared clips [B, 3, T, H, W] change most (each pixel's standard
    deviation over time, averaged over colour and over the pixels of the position's cell)."""
    _, h, w, _ = video.shape
    motion = clips.detach().float().std(dim=2).mean(dim=1, keepdim=True)  # [B, 1, H, W]
    cells = F.adaptive_avg_pool2d(motion, (h, w)).flatten(1)  # [B, H' * W']
    keep = cells.topk(max(1, math.ceil(share * h * w)), dim=1).indices  # [B, K]
    flat = video.flatten(1, 2)
    return flat.gather(1, keep[:, :, None].expand(-1, -1, flat.shape[-1]))


class AVTS(PretrainMethod):
    """AVTS: video and audio embeddings whose distance is small for in-sync pairs."""

    Params = AVTSParams
    recipe_class = AVTSRecipe

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        p = self.params
        least = hard_min_offset(config)
        require(p.max_offset is None or p.max_offset >= least, "method.max_offset",
                f"({p.max_offset}) must be >= {least:g} s: the distance between the starts of two audio "
                f"windows {p.min_offset:g} s apart" + ("" if p.hard_overlap else " with no sample in common"))
        self.video_head = self.projection(self.video_encoder.out_dim * p.video_time_bins)
        self.audio_head = self.projection(self.audio_encoder.out_dim * p.audio_time_bins)
        c = p.curriculum
        self.curriculum = HardNegativeCurriculum(c.easy_steps, c.final_hard_share, c.ramp_steps)

    @classmethod
    def chance_levels(cls, config: Any) -> dict[str, float]:
        return {"train/sync_accuracy_easy": 0.5, "train/sync_accuracy_hard": 0.5}

    def embed_audio(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 1, F, T] -> the joint space [B, E]: with `audio_time_bins` > 1 the projection
        head sees the encoder's map averaged over frequency, in that many time bins."""
        bins = self.params.audio_time_bins
        if bins == 1:
            return super().embed_audio(log_mel)
        timeline = self.audio_encoder(log_mel, return_map=True).mean(dim=2)  # [B, C, T']
        binned = time_bins(timeline, bins, "audio", self.config.model.audio["name"],
                           "a longer audio window (data.clip.audio_seconds)")
        return F.normalize(self.audio_head(binned), dim=1)

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        """Prepared clips [B, 3, T, H, W] -> the joint space [B, E]: with `video_time_bins` > 1 the
        projection head sees the encoder's map averaged over space, in that many time bins."""
        if self.params.video_time_bins == 1:
            return super().embed_video(clips)
        timeline = self.video_encoder(clips, return_map=True).mean(dim=(3, 4))  # [B, C, T']
        return F.normalize(self.video_head(self.video_timeline(timeline)), dim=1)

    def video_timeline(self, timeline: torch.Tensor) -> torch.Tensor:
        """The video map [..., C, T'] -> [..., C * video_time_bins]: T' cut into equal time bins."""
        return time_bins(timeline, self.params.video_time_bins, "video", self.config.model.video["name"],
                         "an encoder that keeps time (mc3_18)")

    def embed_video_positions(self, clips: torch.Tensor) -> torch.Tensor:
        """The joint space at each position of the video map [B, H', W', E]; with `video_time_bins` > 1
        each position's time bins go through the head, as embed_video's spatial mean does."""
        if self.params.video_time_bins == 1:
            return super().embed_video_positions(clips)
        fmap = self.video_encoder(clips, return_map=True)  # [B, C, T', H', W']
        rows = self.video_timeline(fmap.permute(0, 3, 4, 1, 2))  # [B, H', W', C * bins]
        return F.normalize(self.video_head(rows.flatten(0, 2)), dim=1).reshape(*rows.shape[:3], -1)

    def negative_audio_index(self, groups: torch.Tensor, has_hard: torch.Tensor, hard_share: float) -> tuple[torch.Tensor, torch.Tensor]:
        """For each sample, whether its hard negative is used, and the batch row whose audio is its easy
        negative (the next row from another group; itself when no such row exists). "one": a sample
        uses its hard negative with probability `hard_share`; "all": every sample that has one does,
        as soon as the share is positive (the loss weighs the hard term by the share)."""
        b = groups.shape[0]
        if self.params.easy_negatives == "all":
            use_hard = has_hard & (hard_share > 0)
        else:
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
        """L2-normalised embeddings of a batch's pairs: `video` ([B, P, E] per position with
        `spatial_pool: max`, the moving ones with `moving_share`), its in-sync `audio`, its easy negative audio `easy` and its hard one `hard`
        [B, E] (rows without one repeat `easy`); `use_hard` [B] and
        `has_easy` [B] (an easy negative from another group exists)."""
        use_hard, easy_row = self.negative_audio_index(batch["group"], batch["has_hard"], hard_share)
        rows = use_hard.nonzero(as_tuple=True)[0]
        b = len(use_hard)
        clips = self.video_input(batch["video"], train=self.training)
        share = self.params.moving_share
        if self.params.spatial_pool == "max":
            positions = self.embed_video_positions(clips)  # [B, H', W', E]
            video = positions.flatten(1, 2) if share is None else moving_positions(positions, clips, share)
        else:
            video = self.embed_video(clips)
        # the hard negatives in use go through the audio encoder in the same batch as the in-sync audio
        # (one set of batch-norm statistics for both, and no encoder time on audio never compared)
        waves = torch.cat([batch["audio"], batch["audio_hard"][rows]])
        embedded = self.embed_audio(self.audio_input(waves, train=self.training))
        audio = embedded[:b]
        easy = audio[easy_row]
        hard = easy.index_put((rows,), embedded[b:])
        has_easy = easy_row != torch.arange(b, device=easy_row.device)
        return {"video": video, "audio": audio, "easy": easy, "hard": hard, "use_hard": use_hard,
                "has_easy": has_easy}

    def pair_loss(self, video: torch.Tensor, audio: torch.Tensor, is_positive: torch.Tensor) -> torch.Tensor:
        """The contrastive margin loss of pairs; per-position video [N, P, E] is compared through the
        position nearest to each pair's audio."""
        return contrastive_margin_loss(nearest_position(video, audio), audio, is_positive, self.params.margin)

    def margin_loss(self, out: dict[str, torch.Tensor], groups: torch.Tensor, hard_share: float) -> torch.Tensor:
        """The contrastive margin loss over the positives and the negatives `easy_negatives` picks."""
        video, audio = out["video"], out["audio"]
        use_hard = out["use_hard"]
        if self.params.easy_negatives == "one":
            negative = torch.where(use_hard[:, None], out["hard"], out["easy"])
            keep = use_hard | out["has_easy"]
            pairs_video = torch.cat([video, video[keep]])
            pairs_audio = torch.cat([audio, negative[keep]])
            is_positive = torch.cat([torch.ones(len(video)), torch.zeros(int(keep.sum()))]).to(video.device)
            return self.pair_loss(pairs_video, pairs_audio, is_positive)
        ones = torch.ones(len(video), device=video.device)
        positive = self.pair_loss(video, audio, ones)
        rows, cols = (groups[:, None] != groups[None, :]).nonzero(as_tuple=True)
        terms, weights = [], []
        if len(rows):
            terms.append(self.pair_loss(video[rows], audio[cols], torch.zeros(len(rows), device=video.device)))
            weights.append(1.0 - hard_share if use_hard.any() else 1.0)
        if use_hard.any():
            hard_video, hard_audio = video[use_hard], out["hard"][use_hard]
            terms.append(self.pair_loss(hard_video, hard_audio, torch.zeros(len(hard_video), device=video.device)))
            weights.append(hard_share if len(rows) else 1.0)
        if not terms:
            return positive
        return 0.5 * (positive + sum(w * t for w, t in zip(weights, terms)))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        hard_share = self.curriculum.hard_share(self.global_step)
        out = self.embed_pairs(batch, hard_share)
        loss = self.margin_loss(out, batch["group"], hard_share)
        batch_size = len(out["video"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        with torch.no_grad():
            video = nearest_position(out["video"], out["audio"])  # [B, E] whichever the spatial pool
            d_pos = (video - out["audio"]).norm(dim=1)
            for kind, valid in (("easy", out["has_easy"]), ("hard", out["use_hard"])):
                if valid.any():
                    d_neg = (nearest_position(out["video"], out[kind]) - out[kind]).norm(dim=1)
                    self.log(f"train/sync_accuracy_{kind}", (d_pos < d_neg).float()[valid].mean(), batch_size=batch_size)
        self.log("curriculum/hard_share", hard_share, batch_size=batch_size)
        self.log("curriculum/hard_negatives", out["use_hard"].float().sum(), batch_size=batch_size)
        self.watch_collapse({"video": video, "audio": out["audio"]}, batch_size)
        return loss

"""movie-nce (Kalayeh et al. 2021, 2022): audio-visual InfoNCE on movies with within-movie negatives.

Positives: a video clip and the audio at the same instant. Negatives: the other clips of the batch,
in both directions (v->a and a->v). The batches come from the hierarchical sampler
(avssl.data.sampling.HierarchicalBatchSampler): M movies, then K clips of each, and clips of one
file at least `min_gap` seconds apart. A share `within_movie_share` of every clip's negatives is
from its own movie: the sampler takes K large enough, and each clip's within-movie negatives beyond
that share are masked out (so the share need not match a divisor of the batch).

Movie-specific non-semantic cues (a movie's colour palette, its theme music) let a model match audio
to video by movie identity alone. Options:
  (a) per-movie de-biasing (`debias`, off by default: neither paper describes it): the mean of each
      movie's clips in the current batch is subtracted from their embeddings before the loss, so a
      component shared by the clips of a movie carries no signal;
  (b) palette augmentation (`palette_jitter`, off by default): an extra strong hue / saturation
      change drawn independently per clip, so clips of one movie no longer share a palette;
  (c) near-duplicate masking (`mask_near_duplicates`, on by default): clips of the same file closer
      than `min_gap` seconds are removed from each other's negatives (the sampler already keeps its
      own clips apart; this also covers a substitute clip drawn after a decode failure).
Optionally an intra-modal video-video InfoNCE between two device-side augmentations of each clip,
whose negatives include the same-movie clips (`intra_video_weight`, 0 by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from avssl.config.typed import require
from avssl.data.recipes.base import clip_window
from avssl.data.recipes.movie_nce import MovieNCERecipe
from avssl.data.streams import StepStream
from avssl.data.transforms import color_jitter
from avssl.losses.infonce import (
    cross_modal_info_nce,
    cross_modal_top1,
    intra_modal_info_nce,
    pair_mask,
)
from avssl.methods.base import PretrainMethod


@dataclass
class DebiasParams:
    """(a) Per-movie de-biasing from the current batch: z <- z - strength * mean of z over the clips of
    z's movie in the batch (movies with one clip in the batch are left as they are)."""

    enabled: bool = False
    strength: float = 1.0  # 1 removes the whole batch mean of the movie

    def validate(self, where: str) -> None:
        require(0 <= self.strength <= 1, f"{where}.strength", f"must be in [0, 1], got {self.strength}")


@dataclass
class PaletteJitterParams:
    """(b) Strong per-clip colour change on top of data.video_augment's jitter (hue in turns)."""

    enabled: bool = False
    hue: float = 0.5  # assumed: anywhere on the colour wheel
    saturation: float = 0.8
    p: float = 1.0

    def validate(self, where: str) -> None:
        require(0 <= self.hue <= 0.5, f"{where}.hue", f"must be in [0, 0.5], got {self.hue}")
        require(self.saturation >= 0, f"{where}.saturation", f"must be >= 0, got {self.saturation}")
        require(0 <= self.p <= 1, f"{where}.p", f"must be a probability, got {self.p}")


@dataclass
class MovieNCEParams:
    """`method:` section of a movie-nce config (assumed defaults are listed in docs/methods.md).

    temperature 0.07 (assumed, the field's usual InfoNCE value); within_movie_share 0.5 (assumed:
    half of each clip's negatives from its own movie, see within_movie_exclusions); min_gap 2.0 s
    (assumed) between clips of one file; movie_repeats: shuffles of the movies per epoch.
    """

    temperature: float = 0.07
    within_movie_share: float = 0.5
    min_gap: float = 2.0
    movie_repeats: int = 1
    mask_near_duplicates: bool = True
    intra_video_weight: float = 0.0
    debias: DebiasParams = field(default_factory=DebiasParams)
    palette_jitter: PaletteJitterParams = field(default_factory=PaletteJitterParams)

    def validate(self, where: str) -> None:
        require(self.temperature > 0, f"{where}.temperature", f"must be positive, got {self.temperature}")
        require(0 <= self.within_movie_share <= 1, f"{where}.within_movie_share",
                f"must be in [0, 1], got {self.within_movie_share}")
        require(self.min_gap >= 0, f"{where}.min_gap", f"must be >= 0 seconds, got {self.min_gap}")
        require(self.movie_repeats >= 1, f"{where}.movie_repeats", f"must be >= 1, got {self.movie_repeats}")
        require(self.intra_video_weight >= 0, f"{where}.intra_video_weight", "must be >= 0")


def within_movie_exclusions(movies: torch.Tensor, share: float) -> torch.Tensor:
    """[B, B] bool: the within-movie negatives each clip leaves out so that `share` of its remaining
    negatives are from its own movie. movies [B] int.

    Clip i with K_i clips of its movie in the batch keeps n_i = min(K_i - 1, round(share / (1 - share)
    * (B - K_i))) of them (all with share 1): the n_i that follow it in batch order, cyclically within
    its movie. The rest of its movie is excluded (the diagonal never is).
    """
    b = movies.shape[0]
    same = pair_mask(movies, movies)
    index = torch.arange(b, device=movies.device)
    count = same.sum(dim=1)  # K_i
    rank = (same & (index[None, :] < index[:, None])).sum(dim=1)  # i's position among its movie's clips
    if share >= 1:
        keep = count - 1
    else:
        keep = torch.minimum(count - 1, torch.round(share / (1 - share) * (b - count)).long())
    ahead = (rank[None, :] - rank[:, None]) % count[:, None]  # how far clip j follows clip i in its movie
    kept = same & (ahead >= 1) & (ahead <= keep[:, None])
    return same & ~kept & (index[None, :] != index[:, None])


def batch_movie_centering(embeddings: torch.Tensor, movies: torch.Tensor, strength: float) -> torch.Tensor:
    """embeddings [B, D] minus `strength` x the mean of the embeddings of the same movie in the batch
    (gradients flow through the mean too); a movie with a single clip in the batch is left as is."""
    same = pair_mask(movies, movies).to(embeddings.dtype)
    count = same.sum(dim=1, keepdim=True)
    mean = same @ embeddings / count
    return embeddings - strength * (count > 1).to(embeddings.dtype) * mean


def near_duplicate_mask(files: torch.Tensor, starts: torch.Tensor, window: float) -> torch.Tensor:
    """files [B] int, starts [B] seconds -> [B, B] bool: other clips of the same file whose starts
    differ by less than `window` (= clip span + min_gap); the diagonal is False."""
    close = (starts.view(-1, 1) - starts.view(1, -1)).abs() < window
    same = pair_mask(files, files) & close
    return same & ~torch.eye(len(files), dtype=torch.bool, device=files.device)


def within_movie_share(movies: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """movies [B] (and the [B, B] pairs left out of the negatives) -> the mean over clips of the share
    of their in-batch negatives that are from their own movie."""
    b = movies.shape[0]
    negatives = ~torch.eye(b, dtype=torch.bool, device=movies.device)
    if exclude is not None:
        negatives &= ~exclude
    same = (pair_mask(movies, movies) & negatives).sum(dim=1).float()
    return (same / negatives.sum(dim=1).clamp(min=1).float()).mean()


class MovieNCE(PretrainMethod):
    """Cross-modal InfoNCE over hierarchical (movie, clip) batches with per-movie cue handling."""

    Params = MovieNCEParams
    recipe_class = MovieNCERecipe
    loss_terms = ("audio_video_nce", "video_video_nce")

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.video_head = self.projection(self.video_encoder.out_dim)
        self.audio_head = self.projection(self.audio_encoder.out_dim)

    @classmethod
    def chance_levels(cls, config: Any) -> dict[str, float]:
        return {"train/av_top1": 1.0 / config.data.batch_size}

    # ----------------------------------------------------------------- device side

    def video_input(self, clips: torch.Tensor, train: bool = True, stream: int = 0) -> torch.Tensor:
        """As the base, with (b) the palette jitter first when enabled and training."""
        pj = self.params.palette_jitter
        if train and pj.enabled:
            clips = color_jitter(clips, 0.0, 0.0, pj.saturation, pj.hue, pj.p,
                                 generator=self.step_generator(StepStream.PALETTE + stream))
        return super().video_input(clips, train=train, stream=stream)

    def embed(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Projected (de-biased when enabled) embeddings: video, audio [B, D] and video2 when the
        intra-modal loss is on. Not normalised here: the InfoNCE losses normalise."""
        train = self.training
        video = self.video_head(self.video_encoder(self.video_input(batch["video"], train=train)))
        audio = self.audio_head(self.audio_encoder(self.audio_input(batch["audio"], train=train)))
        out = {"video": video, "audio": audio}
        if self.params.intra_video_weight > 0:
            out["video2"] = self.video_head(self.video_encoder(self.video_input(batch["video"], train=train, stream=1)))
        d = self.params.debias
        if d.enabled:
            movies = batch["group"].long()
            out = {name: batch_movie_centering(value, movies, d.strength) for name, value in out.items()}
        return out

    def negative_exclusions(self, batch: dict[str, Any]) -> torch.Tensor:
        """[B, B] pairs removed from the negatives: within-movie negatives beyond the configured share,
        and (c) near-duplicates."""
        p = self.params
        exclude = within_movie_exclusions(batch["group"].long(), p.within_movie_share)
        if p.mask_near_duplicates:
            window = clip_window(self.config).span + p.min_gap
            exclude |= near_duplicate_mask(batch["file"].long(), batch["start"].double(), window)
        return exclude

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        out = self.embed(batch)
        exclude = self.negative_exclusions(batch)
        t = self.params.temperature
        loss_av = cross_modal_info_nce(out["video"], out["audio"], t, exclude_mask=exclude)
        loss = loss_av
        b = out["video"].shape[0]
        if "video2" in out:
            loss_vv = intra_modal_info_nce(out["video"], out["video2"], t, exclude_mask=exclude)
            loss = loss + self.params.intra_video_weight * loss_vv
            self.log("train/video_video_nce", loss_vv, batch_size=b)
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        self.log("train/audio_video_nce", loss_av, batch_size=b)
        self.log("train/av_top1", cross_modal_top1(out["video"].detach(), out["audio"].detach()), batch_size=b)
        self.log("train/within_movie_share", within_movie_share(batch["group"], exclude), batch_size=b)
        self.log("train/excluded_pairs", exclude.float().sum(), batch_size=b)
        self.watch_collapse({"video": out["video"], "audio": out["audio"]}, b)
        return loss

"""movie-nce (Kalayeh et al. 2021, 2022): audio-visual InfoNCE on movies with within-movie negatives.

Positives: a video clip and the audio at the same instant. Negatives: every other clip of the batch,
in both directions (v->a and a->v). The batches come from the hierarchical sampler
(avssl.data.sampling.HierarchicalBatchSampler): M movies, then K clips of each, K chosen so that a
share `within_movie_share` of every clip's in-batch negatives is from its own movie, and clips of
one file at least `min_gap` seconds apart.

Movie-specific non-semantic cues (a movie's colour palette, its theme music) let a model match audio
to video by movie identity alone. Handled here by:
  (a) per-movie de-biasing (`debias`, on by default): a running per-movie mean of each modality's
      projected embedding is subtracted before the loss, so a component shared by every clip of a
      movie (whatever its cause) carries no signal;
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
from torch import nn

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
from avssl.losses.queue import gather_variable_batch
from avssl.methods.base import PretrainMethod


@dataclass
class DebiasParams:
    """(a) Per-movie de-biasing: z <- z - strength * mean_movie(z), the mean a running average."""

    enabled: bool = True
    momentum: float = 0.9  # assumed: weight of the old mean when a movie's clips are seen again
    strength: float = 1.0  # 1 removes the whole per-movie mean; 0 turns the subtraction off

    def validate(self, where: str) -> None:
        require(0 <= self.momentum < 1, f"{where}.momentum", f"must be in [0, 1), got {self.momentum}")
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
    half of each clip's negatives from its own movie; the sampler takes the nearest reachable
    (K-1)/(B-1), K clips per movie, derived from data.batch_size); min_gap 2.0 s (assumed) between
    clips of one file; movie_repeats: shuffles of the movies per epoch.
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


class MovieMeanBank(nn.Module):
    """Running mean embedding per movie id; `forward` subtracts it (the per-movie de-biasing).

    Buffers: means [G, D], seen [G] bool, grown when a larger movie id appears (and resized to a
    checkpoint's size on load). An update uses the batch's clips of each movie (gathered from all
    DDP ranks, so every rank holds the same means): mean <- batch mean the first time, then
    momentum * mean + (1 - momentum) * batch mean. The subtracted mean already includes the
    current batch, so a constant offset shared by a movie's clips is removed from the first step.
    """

    def __init__(self, dim: int, momentum: float = 0.9, strength: float = 1.0) -> None:
        super().__init__()
        self.dim, self.momentum, self.strength = dim, momentum, strength
        self.register_buffer("means", torch.zeros(0, dim))
        self.register_buffer("seen", torch.zeros(0, dtype=torch.bool))

    def forward(self, embeddings: torch.Tensor, movies: torch.Tensor, update: bool = True) -> torch.Tensor:
        """embeddings [B, D], movies [B] int ids >= 0 -> de-biased embeddings [B, D].

        Gradients flow through `embeddings` only (the means are detached statistics). Without
        `update` a movie never seen keeps its embedding unchanged.
        """
        if embeddings.dim() != 2 or embeddings.shape[1] != self.dim or movies.shape != embeddings.shape[:1]:
            raise ValueError(f"need embeddings [B, {self.dim}] and movies [B], got "
                             f"{list(embeddings.shape)} and {list(movies.shape)}")
        if movies.numel() and int(movies.min()) < 0:
            raise ValueError("movie ids must be >= 0")
        if update:
            self._update(gather_variable_batch(embeddings.detach()), gather_variable_batch(movies))
        self._grow(int(movies.max()) + 1 if movies.numel() else 0, embeddings.device)
        means = self.means[movies].to(embeddings.dtype)
        known = self.seen[movies].to(embeddings.dtype).unsqueeze(1)
        return embeddings - self.strength * known * means

    @torch.no_grad()
    def _update(self, embeddings: torch.Tensor, movies: torch.Tensor) -> None:
        if movies.numel() == 0:
            return
        self._grow(int(movies.max()) + 1, embeddings.device)
        ids, inverse = torch.unique(movies, return_inverse=True)
        sums = torch.zeros(len(ids), self.dim, device=embeddings.device, dtype=self.means.dtype)
        sums.index_add_(0, inverse, embeddings.to(self.means.dtype))
        counts = torch.bincount(inverse, minlength=len(ids)).to(sums.dtype).unsqueeze(1)
        batch_means = sums / counts
        old = self.means[ids]
        keep = torch.where(self.seen[ids], self.momentum, 0.0).to(sums.dtype).unsqueeze(1)
        self.means[ids] = keep * old + (1 - keep) * batch_means
        self.seen[ids] = True

    def _grow(self, size: int, device: torch.device) -> None:
        if size <= self.means.shape[0]:
            if self.means.device != device:
                self.means, self.seen = self.means.to(device), self.seen.to(device)
            return
        means = torch.zeros(size, self.dim, device=device, dtype=self.means.dtype)
        seen = torch.zeros(size, dtype=torch.bool, device=device)
        means[: self.means.shape[0]] = self.means.to(device)
        seen[: self.seen.shape[0]] = self.seen.to(device)
        self.means, self.seen = means, seen

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN202
        # the number of movies is only known from the data: take the checkpoint's size
        stored = state_dict.get(prefix + "means")
        if stored is not None:
            self.means = torch.zeros_like(stored)
            self.seen = torch.zeros(stored.shape[0], dtype=torch.bool, device=stored.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def near_duplicate_mask(files: torch.Tensor, starts: torch.Tensor, window: float) -> torch.Tensor:
    """files [B] int, starts [B] seconds -> [B, B] bool: other clips of the same file whose starts
    differ by less than `window` (= clip span + min_gap); the diagonal is False."""
    close = (starts.view(-1, 1) - starts.view(1, -1)).abs() < window
    same = pair_mask(files, files) & close
    return same & ~torch.eye(len(files), dtype=torch.bool, device=files.device)


def within_movie_share(movies: torch.Tensor) -> torch.Tensor:
    """movies [B] -> the mean over clips of the share of its B-1 in-batch negatives from its movie."""
    b = movies.shape[0]
    same = pair_mask(movies, movies).sum(dim=1) - 1
    return same.float().mean() / max(1, b - 1)


class MovieNCE(PretrainMethod):
    """Cross-modal InfoNCE over hierarchical (movie, clip) batches with per-movie cue handling."""

    Params = MovieNCEParams
    recipe_class = MovieNCERecipe
    loss_terms = ("audio_video_nce", "video_video_nce")

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.video_head = self.projection(self.video_encoder.out_dim)
        self.audio_head = self.projection(self.audio_encoder.out_dim)
        d = self.params.debias
        dim = config.model.embed_dim
        self.video_bank = MovieMeanBank(dim, d.momentum, d.strength) if d.enabled else None
        self.audio_bank = MovieMeanBank(dim, d.momentum, d.strength) if d.enabled else None

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
        movies = batch["group"].long()
        out = {"video": video, "audio": audio}
        if self.params.intra_video_weight > 0:
            out["video2"] = self.video_head(self.video_encoder(self.video_input(batch["video"], train=train, stream=1)))
        if self.video_bank is not None:
            out["video"] = self.video_bank(video, movies, update=train)
            out["audio"] = self.audio_bank(audio, movies, update=train)
            if "video2" in out:  # the same movie mean: both views must lose the same component
                out["video2"] = self.video_bank(out["video2"], movies, update=False)
        return out

    def negative_exclusions(self, batch: dict[str, Any]) -> torch.Tensor | None:
        """[B, B] pairs removed from the negatives ((c) near-duplicates), or None."""
        if not self.params.mask_near_duplicates:
            return None
        window = clip_window(self.config).span + self.params.min_gap
        return near_duplicate_mask(batch["file"].long(), batch["start"].double(), window)

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
        self.log("train/within_movie_share", within_movie_share(batch["group"]), batch_size=b)
        if exclude is not None:
            self.log("train/masked_near_duplicates", exclude.float().sum(), batch_size=b)
        return loss

"""Config of temporal-av (the `method:` section): its tasks' settings, the queue, and the loss weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from avssl.config.typed import require

PRETEXT_TERMS = ("video_speed", "video_direction", "audio_speed", "audio_direction", "video_order", "audio_order",
                 "av_order")
CONTRAST_TERMS = ("video_video", "video_audio", "piece_sync")
@dataclass
class LossWeights:
    """Weight of each term in the total loss (assumed: all 1.0; the paper's weights are not known here).
    piece_sync counts only with `av_order_pieces` (otherwise the term does not exist)."""

    video_speed: float = 1.0
    video_direction: float = 1.0
    audio_speed: float = 1.0
    audio_direction: float = 1.0
    video_order: float = 1.0
    audio_order: float = 1.0
    av_order: float = 1.0
    video_video: float = 1.0
    video_audio: float = 1.0
    piece_sync: float = 1.0

    def validate(self, where: str) -> None:
        for name in PRETEXT_TERMS + CONTRAST_TERMS:
            require(getattr(self, name) >= 0, f"{where}.{name}", "must be >= 0")


@dataclass
class QueueParams:
    """The queue of past (video, audio) keys and the sample-dependent pair rule.

    Assumed: 8192 entries; keys from momentum copies of the encoders and heads (`momentum` 0.999 as
    MoCo; 0 uses the current encoders' detached embeddings); 5 extra positives per sample (the
    entries with the highest cross-modal agreement, AVID-CMA), every other eligible entry a negative
    (`num_negatives` null); used from `start_step` (before, the queue fills but the contrast uses
    the batch only).
    """

    size: int = 8192
    momentum: float = 0.999
    num_neighbours: int = 5
    num_negatives: Optional[int] = None
    start_step: int = 0

    def validate(self, where: str) -> None:
        require(self.size > 0, f"{where}.size", "must be positive")
        require(0 <= self.momentum < 1, f"{where}.momentum", "must be in [0, 1)")
        require(self.num_neighbours >= 0, f"{where}.num_neighbours", "must be >= 0")
        require(self.num_negatives is None or self.num_negatives >= 0, f"{where}.num_negatives",
                "must be >= 0 or null (all)")
        require(self.start_step >= 0, f"{where}.start_step", "must be >= 0")


@dataclass
class TemporalAVParams:
    """`method:` section of a temporal-av config (assumed defaults, see docs/methods.md).

    speeds: playback speed classes as frame skips (1x/2x/4x/8x, Jenni et al. 2020), audio resampled
    alike; num_subclips: 3 sub-clips, 3! = 6 order classes (or 3 with merge_reverse_order), with
    `order_gap_frames` frames left out between neighbours (the audio sub-clips with the same share
    of their clip); av_order_min_offset / av_order_max_offset: the audio window lies 1-2 s before
    or after clip A's video window in file time (or with it); temperature 0.07; head_hidden: hidden
    width of the pretext heads (512).
    av_order_pieces: 0, the inter-modal order head reads clip A's pooled video and audio features
    (TuplePretextHead); n >= 2, clip A's video and audio are each cut into n contiguous pieces, encoded
    one by one, and the head classifies the n x n matrix of their similarities (LagPretextHead), whose
    projections the `piece_sync` term trains to match clip B's video and audio pieces of the same
    instant (docs/methods.md, temporal-av).
    order_all_permutations: the order heads train on all n! orders of each sample's encoded pieces,
    each with its label, not only the order drawn (assumed; the pieces are encoded once either way).
    audio_order_windows: audio order examples per sample: clip B's audio and K - 1 more windows.
    """

    speeds: tuple[int, ...] = (1, 2, 4, 8)
    num_subclips: int = 3
    merge_reverse_order: bool = False
    order_gap_frames: int = 2
    av_order_min_offset: float = 1.0
    av_order_max_offset: float = 2.0
    av_order_pieces: int = 0
    order_all_permutations: bool = False
    audio_order_windows: int = 1
    temperature: float = 0.07
    head_hidden: int = 512
    queue: QueueParams = field(default_factory=QueueParams)
    weights: LossWeights = field(default_factory=LossWeights)

    def validate(self, where: str) -> None:
        require(len(self.speeds) >= 2, f"{where}.speeds", "needs at least 2 speed classes")
        require(all(s >= 1 for s in self.speeds), f"{where}.speeds",
                f"must be integer frame skips >= 1, got {list(self.speeds)}")
        require(list(self.speeds) == sorted(set(self.speeds)), f"{where}.speeds",
                f"must be distinct and increasing, got {list(self.speeds)}")
        require(self.num_subclips >= (3 if self.merge_reverse_order else 2), f"{where}.num_subclips",
                "must be >= 2 (>= 3 with merge_reverse_order)")
        require(self.num_subclips <= 5, f"{where}.num_subclips", "must be <= 5 (5! = 120 order classes)")
        require(self.order_gap_frames >= 0, f"{where}.order_gap_frames", "must be >= 0")
        require(0 < self.av_order_min_offset <= self.av_order_max_offset, f"{where}.av_order_min_offset",
                "need 0 < av_order_min_offset <= av_order_max_offset")
        require(self.av_order_pieces == 0 or self.av_order_pieces >= 2, f"{where}.av_order_pieces",
                "must be 0 (pooled features) or >= 2")
        require(self.av_order_pieces == 0 or not self.merge_reverse_order, f"{where}.av_order_pieces",
                "needs merge_reverse_order false: piece_sync aligns the order pieces by their permutation")
        require(not (self.order_all_permutations and self.merge_reverse_order), f"{where}.order_all_permutations",
                "needs merge_reverse_order false: a merged label does not say which order the pieces were shown in")
        require(self.audio_order_windows >= 1, f"{where}.audio_order_windows", "must be >= 1")
        require(self.temperature > 0, f"{where}.temperature", "must be positive")
        require(self.head_hidden >= 0, f"{where}.head_hidden", "must be >= 0 (0: linear heads)")

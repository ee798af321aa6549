"""temporal-av (Black, Collomosse, Jenni, AAAI 2023): temporal self-supervision plus AV contrast.

Pretext tasks (cross-entropy on heads over encoder features): playback speed and direction of
video (both clips of a sample) and audio, intra-modal order of shuffled video sub-clips, and
inter-modal order (audio before / at / after the video). Contrast (InfoNCE on projections):
video-video (two windows of one file) and video-audio, each over the batch plus a FeatureQueue of
past embeddings whose entries become per-sample extra positives or negatives by the rule of
avssl.losses.queue_pairs. The loss is the weighted sum of the eight terms (`method.weights`).
The data recipe is avssl.data.recipes.temporal_av.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F

from avssl.config.typed import require
from avssl.data.recipes.temporal_av import TemporalAVRecipe
from avssl.data.views import order_classes
from avssl.losses.cross_entropy import pretext_cross_entropy
from avssl.losses.infonce import info_nce_with_queue, pair_mask
from avssl.losses.queue import FeatureQueue
from avssl.losses.queue_pairs import (
    QueuePairs,
    cross_modal_info_nce_with_queue,
    sample_dependent_pairs,
)
from avssl.methods.base import PretrainMethod
from avssl.models.heads import ClipPretextHead, TuplePretextHead

PRETEXT_TERMS = ("video_speed", "video_direction", "audio_speed", "audio_direction", "video_order", "av_order")
CONTRAST_TERMS = ("video_video", "video_audio")


@dataclass
class LossWeights:
    """Weight of each term in the total loss (assumed: all 1.0; the paper's weights are not known here)."""

    video_speed: float = 1.0
    video_direction: float = 1.0
    audio_speed: float = 1.0
    audio_direction: float = 1.0
    video_order: float = 1.0
    av_order: float = 1.0
    video_video: float = 1.0
    video_audio: float = 1.0

    def validate(self, where: str) -> None:
        for name in PRETEXT_TERMS + CONTRAST_TERMS:
            require(getattr(self, name) >= 0, f"{where}.{name}", "must be >= 0")


@dataclass
class QueueParams:
    """The queue of past (video, audio) embeddings and the sample-dependent pair rule.

    Assumed: 8192 entries, 5 nearest neighbours per modality, every remaining entry a negative
    (`num_negatives` null), used from the first step (`start_step` 0); before `start_step` the
    queue fills but the contrast uses the batch only.
    """

    size: int = 8192
    num_neighbours: int = 5
    num_negatives: Optional[int] = None
    start_step: int = 0

    def validate(self, where: str) -> None:
        require(self.size > 0, f"{where}.size", "must be positive")
        require(self.num_neighbours >= 0, f"{where}.num_neighbours", "must be >= 0")
        require(self.num_negatives is None or self.num_negatives >= 0, f"{where}.num_negatives",
                "must be >= 0 or null (all)")
        require(self.start_step >= 0, f"{where}.start_step", "must be >= 0")


@dataclass
class TemporalAVParams:
    """`method:` section of a temporal-av config (assumed defaults, see docs/methods.md).

    speeds: playback speed classes as frame skips (1x/2x/4x/8x, Jenni et al. 2020), the same for
    audio (resampling); num_subclips: 3 sub-clips, 3! = 6 order classes (or 3 with
    merge_reverse_order); av_order_min_offset / av_order_max_offset: the audio start lies 1-2 s
    before or after the video start (or at it); temperature 0.07; head_hidden: hidden width of
    the pretext heads (512).
    """

    speeds: tuple[int, ...] = (1, 2, 4, 8)
    num_subclips: int = 3
    merge_reverse_order: bool = False
    av_order_min_offset: float = 1.0
    av_order_max_offset: float = 2.0
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
        require(0 < self.av_order_min_offset <= self.av_order_max_offset, f"{where}.av_order_min_offset",
                "need 0 < av_order_min_offset <= av_order_max_offset")
        require(self.temperature > 0, f"{where}.temperature", "must be positive")
        require(self.head_hidden >= 0, f"{where}.head_hidden", "must be >= 0 (0: linear heads)")


class TemporalAV(PretrainMethod):
    """Encoders, projections, six pretext heads and a queue; loss = weighted sum of eight terms."""

    Params = TemporalAVParams
    recipe_class = TemporalAVRecipe
    loss_terms = PRETEXT_TERMS + CONTRAST_TERMS

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        p, clip = self.params, config.data.clip
        require(clip.frames >= p.num_subclips, "data.clip.frames",
                f"({clip.frames}) must be >= method.num_subclips ({p.num_subclips})")
        bad = [s for s in p.speeds if clip.sample_rate % s]
        require(not bad, "method.speeds",
                f"every speed must divide data.clip.sample_rate ({clip.sample_rate}), not {bad}")
        vdim, adim, hidden = self.video_encoder.out_dim, self.audio_encoder.out_dim, p.head_hidden
        self.video_head = self.projection(vdim)
        self.audio_head = self.projection(adim)
        self.video_speed_head = ClipPretextHead(vdim, len(p.speeds), hidden)
        self.video_direction_head = ClipPretextHead(vdim, 2, hidden)
        self.audio_speed_head = ClipPretextHead(adim, len(p.speeds), hidden)
        self.audio_direction_head = ClipPretextHead(adim, 2, hidden)
        num_orders = len(order_classes(p.num_subclips, p.merge_reverse_order))
        self.video_order_head = TuplePretextHead([vdim] * p.num_subclips, num_orders, hidden)
        self.av_order_head = TuplePretextHead([vdim, adim], 3, hidden)
        # a submodule: its buffers (keys, ids, pointer) are saved in checkpoints with the weights
        self.queue = FeatureQueue(p.queue.size, config.model.embed_dim, modalities=("video", "audio"))

    # ----------------------------------------------------------------- forward

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Encoder features and embeddings of one batch.

        Returns video_features [2B, Dv] (rows :B clip A, B: clip B), part_features [B, n, Dv],
        audio_features [B, Da], video_embed [2B, E], audio_embed [B, E] (L2-normalised).
        """
        b = batch["video"].shape[0]
        clips = torch.cat([batch["video"], batch["video_b"]])
        video_features = self.video_encoder(self.video_input(clips, train=self.training))
        parts = batch["video_b_parts"]
        n = parts.shape[1]
        part_features = self.video_encoder(self.video_input(parts.flatten(0, 1), train=self.training, stream=1))
        audio_features = self.audio_encoder(self.audio_input(batch["audio"], train=self.training))
        return {
            "video_features": video_features,
            "part_features": part_features.view(b, n, -1),
            "audio_features": audio_features,
            "video_embed": F.normalize(self.video_head(video_features), dim=1),
            "audio_embed": F.normalize(self.audio_head(audio_features), dim=1),
        }

    def pretext_logits(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits of the six heads: video_* [2B, C] (clips A then B), the others [B, C]."""
        video, audio = out["video_features"], out["audio_features"]
        b = audio.shape[0]
        return {
            "video_speed": self.video_speed_head(video),
            "video_direction": self.video_direction_head(video),
            "audio_speed": self.audio_speed_head(audio),
            "audio_direction": self.audio_direction_head(audio),
            "video_order": self.video_order_head(list(out["part_features"].unbind(1))),
            "av_order": self.av_order_head([video[:b], audio]),
        }

    @staticmethod
    def pretext_labels(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Labels aligned with pretext_logits: the [B, 2] video labels become [2B] (A then B)."""
        return {
            "video_speed": batch["video_speed"].T.reshape(-1),
            "video_direction": batch["video_direction"].T.reshape(-1),
            **{name: batch[name] for name in ("audio_speed", "audio_direction", "video_order", "av_order")},
        }

    def queue_pairs(self, video: torch.Tensor, audio: torch.Tensor, video_id: torch.Tensor) -> QueuePairs:
        """Roles of the queue's entries for each sample ([B, K] masks; K = 0 before start_step)."""
        q = self.params.queue
        if self.global_step < q.start_step:
            empty = torch.zeros(video.shape[0], 0, dtype=torch.bool, device=video.device)
            return QueuePairs(positive=empty, negative=empty)
        return sample_dependent_pairs(video, audio, self.queue.keys("video"), self.queue.keys("audio"),
                                      video_id, self.queue.video_ids(),
                                      q.num_neighbours, q.num_negatives)

    def contrastive_losses(
        self, out: dict[str, torch.Tensor], batch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], QueuePairs]:
        """video_video and video_audio InfoNCE over batch + queue; same-group pairs of different
        samples are excluded from the batch negatives (clips of one source are not negatives)."""
        p = self.params
        b = batch["video"].shape[0]
        video_a, video_b = out["video_embed"][:b], out["video_embed"][b:]
        audio = out["audio_embed"]
        pairs = self.queue_pairs(video_a, audio, batch["video_id"])
        k = pairs.positive.shape[1]
        queue_video = self.queue.keys("video")[:k]
        queue_audio = self.queue.keys("audio")[:k]
        group = batch["group"]
        exclude = pair_mask(group, group) & ~torch.eye(b, dtype=torch.bool, device=group.device)
        video_audio = cross_modal_info_nce_with_queue(video_a, audio, queue_video, queue_audio, pairs,
                                                      p.temperature, exclude)
        a_to_b = info_nce_with_queue(video_a, video_b, queue_video, p.temperature, exclude,
                                     pairs.positive, pairs.excluded)
        b_to_a = info_nce_with_queue(video_b, video_a, queue_video, p.temperature, exclude,
                                     pairs.positive, pairs.excluded)
        return {"video_video": 0.5 * (a_to_b + b_to_a), "video_audio": video_audio}, pairs

    def losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Every term (scalars), their weighted sum `loss`, head accuracies (`acc_<term>`) and the
        mean count of queue positives / negatives per sample (`queue_positives`, `queue_negatives`).
        Also returns the detached embeddings to enqueue (`enqueue_video`, `enqueue_audio`)."""
        out = self.encode(batch)
        logits, labels = self.pretext_logits(out), self.pretext_labels(batch)
        terms = {name: pretext_cross_entropy(logits[name], labels[name]) for name in PRETEXT_TERMS}
        contrast, pairs = self.contrastive_losses(out, batch)
        terms.update(contrast)
        weights = self.params.weights
        result = dict(terms)
        result["loss"] = sum(getattr(weights, name) * value for name, value in terms.items())
        with torch.no_grad():
            for name in PRETEXT_TERMS:
                result[f"acc_{name}"] = (logits[name].argmax(1) == labels[name]).float().mean()
            result["queue_positives"] = pairs.positive.sum(1).float().mean()
            result["queue_negatives"] = pairs.negative.sum(1).float().mean()
        b = batch["video"].shape[0]
        result["enqueue_video"] = out["video_embed"][:b].detach()
        result["enqueue_audio"] = out["audio_embed"].detach()
        return result

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        result = self.losses(batch)
        batch_size = batch["video"].shape[0]
        self.log("train/loss", result["loss"], prog_bar=True, batch_size=batch_size)
        for name in PRETEXT_TERMS + CONTRAST_TERMS:
            self.log(f"train/{name}", result[name], batch_size=batch_size)
        for name in PRETEXT_TERMS:
            self.log(f"train/acc_{name}", result[f"acc_{name}"], batch_size=batch_size)
        self.log("train/queue_positives", result["queue_positives"], batch_size=batch_size)
        self.log("train/queue_negatives", result["queue_negatives"], batch_size=batch_size)
        # enqueue after the loss: a sample never meets its own key in the queue
        self.queue.enqueue({"video": result["enqueue_video"], "audio": result["enqueue_audio"]}, batch["video_id"])
        return result["loss"]

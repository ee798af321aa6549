"""temporal-av (Black, Collomosse, Jenni, AAAI 2023): temporal self-supervision plus AV contrast.

Pretext tasks (cross-entropy on heads over encoder features): playback speed and direction of clip A
in video and in audio (the two share them), intra-modal order of shuffled sub-clips in video and in
audio, and inter-modal order (the audio before / with / after the video on the played time line).
Contrast (InfoNCE on projections): video-video (clips B and C, two plain windows of one file; never
the transformed clip A, whose speed and direction the contrast would teach the encoder to ignore) and
video-audio (clip B and its in-sync audio), each over the batch plus a FeatureQueue of past keys from
momentum (EMA) copies of the encoders, whose entries become per-sample extra positives or negatives
by the rule of avssl.losses.queue_pairs. The loss is the weighted sum of the nine terms
(`method.weights`). The data recipe is avssl.data.recipes.temporal_av.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from avssl.config.typed import require
from avssl.data.recipes.temporal_av import TemporalAVRecipe
from avssl.data.views import order_classes
from avssl.losses.cross_entropy import pretext_cross_entropy
from avssl.losses.infonce import info_nce_with_queue, pair_mask
from avssl.losses.queue import FeatureQueue
from avssl.losses.queue_pairs import QueuePairs, cross_modal_info_nce_with_queue, sample_dependent_pairs
from avssl.methods.base import PretrainMethod
from avssl.models.heads import ClipPretextHead, TuplePretextHead
from avssl.models.momentum import MomentumEncoder

log = logging.getLogger(__name__)

PRETEXT_TERMS = ("video_speed", "video_direction", "audio_speed", "audio_direction", "video_order", "audio_order",
                 "av_order")
CONTRAST_TERMS = ("video_video", "video_audio")
# the label each pretext head is trained on (speed and direction are shared by a sample's two modalities)
LABELS = {"video_speed": "speed", "audio_speed": "speed", "video_direction": "direction",
          "audio_direction": "direction", "video_order": "video_order", "audio_order": "audio_order",
          "av_order": "av_order"}
# a queue that gives fewer extra positives than this per sample after its start is reported
FEW_QUEUE_POSITIVES = 0.1


@dataclass
class LossWeights:
    """Weight of each term in the total loss (assumed: all 1.0; the paper's weights are not known here)."""

    video_speed: float = 1.0
    video_direction: float = 1.0
    audio_speed: float = 1.0
    audio_direction: float = 1.0
    video_order: float = 1.0
    audio_order: float = 1.0
    av_order: float = 1.0
    video_video: float = 1.0
    video_audio: float = 1.0

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
    """

    speeds: tuple[int, ...] = (1, 2, 4, 8)
    num_subclips: int = 3
    merge_reverse_order: bool = False
    order_gap_frames: int = 2
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
        require(self.order_gap_frames >= 0, f"{where}.order_gap_frames", "must be >= 0")
        require(0 < self.av_order_min_offset <= self.av_order_max_offset, f"{where}.av_order_min_offset",
                "need 0 < av_order_min_offset <= av_order_max_offset")
        require(self.temperature > 0, f"{where}.temperature", "must be positive")
        require(self.head_hidden >= 0, f"{where}.head_hidden", "must be >= 0 (0: linear heads)")


class TemporalAV(PretrainMethod):
    """Encoders, projections, seven pretext heads, momentum keys and a queue; loss = weighted sum of nine terms."""

    Params = TemporalAVParams
    recipe_class = TemporalAVRecipe
    loss_terms = PRETEXT_TERMS + CONTRAST_TERMS

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        p, clip = self.params, config.data.clip
        need = p.num_subclips + (p.num_subclips - 1) * p.order_gap_frames
        require(clip.frames >= need, "data.clip.frames",
                f"({clip.frames}) must hold method.num_subclips ({p.num_subclips}) frames with "
                f"method.order_gap_frames ({p.order_gap_frames}) between them: at least {need}")
        vdim, adim, hidden = self.video_encoder.out_dim, self.audio_encoder.out_dim, p.head_hidden
        self.video_head = self.projection(vdim)
        self.audio_head = self.projection(adim)
        num_orders = len(order_classes(p.num_subclips, p.merge_reverse_order))
        self.heads = nn.ModuleDict({
            "video_speed": ClipPretextHead(vdim, len(p.speeds), hidden),
            "video_direction": ClipPretextHead(vdim, 2, hidden),
            "audio_speed": ClipPretextHead(adim, len(p.speeds), hidden),
            "audio_direction": ClipPretextHead(adim, 2, hidden),
            "video_order": TuplePretextHead([vdim] * p.num_subclips, num_orders, hidden),
            "audio_order": TuplePretextHead([adim] * p.num_subclips, num_orders, hidden),
            "av_order": TuplePretextHead([vdim, adim], 3, hidden),
        })
        if p.queue.momentum > 0:
            self.key_video = MomentumEncoder(nn.Sequential(self.video_encoder, self.video_head), p.queue.momentum)
            self.key_audio = MomentumEncoder(nn.Sequential(self.audio_encoder, self.audio_head), p.queue.momentum)
        # a submodule: its buffers (keys, ids, pointer) are saved in checkpoints with the weights
        self.queue = FeatureQueue(p.queue.size, config.model.embed_dim, modalities=("video", "audio"))
        self._few_positives_warned = False

    @classmethod
    def chance_levels(cls, config: Any) -> dict[str, float]:
        """Per head 1/C (the speeds a file fits may be fewer: speed chance is then higher)."""
        p = config.method.params
        orders = 1.0 / len(order_classes(p.num_subclips, p.merge_reverse_order))
        classes = {"video_speed": 1.0 / len(p.speeds), "audio_speed": 1.0 / len(p.speeds), "video_direction": 0.5,
                   "audio_direction": 0.5, "video_order": orders, "audio_order": orders, "av_order": 1.0 / 3}
        return {f"train/acc_{name}": value for name, value in classes.items()}

    # ----------------------------------------------------------------- forward

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Encoder features: video [3B, Dv] (rows :B clip A, B:2B clip B, 2B: clip C), video_parts
        [B, n, Dv], audio [2B, Da] (rows :B clip A's audio, B: audio_sync), audio_parts [B, n, Da]; and
        the L2-normalised embeddings video_embed [2B, E] (clips B and C), audio_sync_embed [B, E]."""
        b, train = batch["video"].shape[0], self.training
        clips = torch.cat([batch["video"], batch["video_b"], batch["video_c"]])
        video = self.video_encoder(self.video_input(clips, train=train))
        parts = batch["video_parts"]
        video_parts = self.video_encoder(self.video_input(parts.flatten(0, 1), train=train, stream=1))
        audio = self.audio_encoder(self.audio_input(torch.cat([batch["audio"], batch["audio_sync"]]), train=train))
        audio_parts = self.audio_encoder(self.audio_input(batch["audio_parts"].flatten(0, 1), train=train, stream=1))
        n = parts.shape[1]
        return {
            "video": video,
            "video_parts": video_parts.view(b, n, -1),
            "audio": audio,
            "audio_parts": audio_parts.view(b, n, -1),
            "video_embed": F.normalize(self.video_head(video[b:]), dim=1),
            "audio_sync_embed": F.normalize(self.audio_head(audio[b:]), dim=1),
        }

    def pretext_logits(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits [B, C] of the seven heads, on clip A (speed, direction, inter-modal order) and on
        clip B's sub-clips (order)."""
        b = out["video_parts"].shape[0]
        video_a, audio_a = out["video"][:b], out["audio"][:b]
        h = self.heads
        return {
            "video_speed": h["video_speed"](video_a),
            "video_direction": h["video_direction"](video_a),
            "audio_speed": h["audio_speed"](audio_a),
            "audio_direction": h["audio_direction"](audio_a),
            "video_order": h["video_order"](list(out["video_parts"].unbind(1))),
            "audio_order": h["audio_order"](list(out["audio_parts"].unbind(1))),
            "av_order": h["av_order"]([video_a, audio_a]),
        }

    @staticmethod
    def pretext_labels(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Labels aligned with pretext_logits, [B] each."""
        return {name: batch[label] for name, label in LABELS.items()}

    @torch.no_grad()
    def queue_keys(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What this batch adds to the queue: clip B's and audio_sync's embeddings [B, E] from the
        momentum copies (or the current model's, detached, without momentum)."""
        if self.params.queue.momentum == 0:
            return {"video": out["video_embed"][:len(out["audio_sync_embed"])].detach(),
                    "audio": out["audio_sync_embed"].detach()}
        video = self.key_video(self.video_input(batch["video_b"], train=self.training))
        audio = self.key_audio(self.audio_input(batch["audio_sync"], train=self.training))
        return {"video": F.normalize(video, dim=1), "audio": F.normalize(audio, dim=1)}

    def queue_pairs(self, video: torch.Tensor, audio: torch.Tensor, video_id: torch.Tensor) -> QueuePairs:
        """Roles of the queue's entries for each sample ([B, K] masks; K = 0 before start_step)."""
        q = self.params.queue
        if self.global_step < q.start_step:
            empty = torch.zeros(video.shape[0], 0, dtype=torch.bool, device=video.device)
            return QueuePairs(positive=empty, negative=empty)
        return sample_dependent_pairs(video, audio, self.queue.keys("video"), self.queue.keys("audio"),
                                      video_id, self.queue.video_ids(), q.num_neighbours, q.num_negatives)

    def contrastive_losses(self, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], QueuePairs]:
        """video_video (B <-> C) and video_audio (B <-> its in-sync audio) InfoNCE over batch + queue;
        samples of the same group are not each other's batch negatives."""
        p = self.params
        b = batch["video"].shape[0]
        video_b, video_c = out["video_embed"][:b], out["video_embed"][b:]
        audio = out["audio_sync_embed"]
        pairs = self.queue_pairs(video_b, audio, batch["video_id"])
        k = pairs.positive.shape[1]
        queue_video, queue_audio = self.queue.keys("video")[:k], self.queue.keys("audio")[:k]
        group = batch["group"]
        exclude = pair_mask(group, group) & ~torch.eye(b, dtype=torch.bool, device=group.device)
        video_audio = cross_modal_info_nce_with_queue(video_b, audio, queue_video, queue_audio, pairs,
                                                      p.temperature, exclude)
        b_to_c = info_nce_with_queue(video_b, video_c, queue_video, p.temperature, exclude,
                                     pairs.positive, pairs.excluded)
        c_to_b = info_nce_with_queue(video_c, video_b, queue_video, p.temperature, exclude,
                                     pairs.positive, pairs.excluded)
        return {"video_video": 0.5 * (b_to_c + c_to_b), "video_audio": video_audio}, pairs

    def losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Every term (scalars), their weighted sum `loss`, head accuracies (`acc_<term>`), the mean
        count of queue positives / negatives per sample, and the keys to enqueue (`keys`)."""
        out = self.encode(batch)
        logits, labels = self.pretext_logits(out), self.pretext_labels(batch)
        terms = {name: pretext_cross_entropy(logits[name], labels[name]) for name in PRETEXT_TERMS}
        contrast, pairs = self.contrastive_losses(out, batch)
        terms.update(contrast)
        weights = self.params.weights
        result: dict[str, Any] = dict(terms)
        result["loss"] = sum(getattr(weights, name) * value for name, value in terms.items())
        with torch.no_grad():
            for name in PRETEXT_TERMS:
                result[f"acc_{name}"] = (logits[name].argmax(1) == labels[name]).float().mean()
            result["queue_positives"] = pairs.positive.sum(1).float().mean()
            result["queue_negatives"] = pairs.negative.sum(1).float().mean()
        result["keys"] = self.queue_keys(batch, out)
        result["embeddings"] = {"video": out["video_embed"], "audio": out["audio_sync_embed"]}
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
        self.warn_on_few_queue_positives(float(result["queue_positives"]))
        self.watch_collapse(result["embeddings"], batch_size)
        # enqueue after the loss: a sample never meets its own key in the queue
        self.queue.enqueue(result["keys"], batch["video_id"])
        return result["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.params.queue.momentum > 0:
            self.key_video.update(nn.Sequential(self.video_encoder, self.video_head))
            self.key_audio.update(nn.Sequential(self.audio_encoder, self.audio_head))

    def warn_on_few_queue_positives(self, positives: float) -> None:
        """Once per run: a full queue past its start step that still gives almost no extra positives."""
        q = self.params.queue
        full = len(self.queue) >= min(q.size, 4 * self.config.data.batch_size)
        if (not self._few_positives_warned and self.global_step >= q.start_step and full
                and positives < FEW_QUEUE_POSITIVES):
            self._few_positives_warned = True
            log.warning("step %d: the queue gives %.2f extra positives per sample (method.queue.num_neighbours=%d): "
                        "the sample-dependent positives are inert", self.global_step, positives, q.num_neighbours)

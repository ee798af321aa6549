"""temporal-av (Black, Collomosse, Jenni, AAAI 2023): temporal self-supervision plus AV contrast.

Pretext tasks (cross-entropy on heads over encoder features): playback speed and direction of clip A
in video and in audio (the two share them), intra-modal order of shuffled sub-clips in video and in
audio, and inter-modal order (the audio before / with / after the video on the played time line).
Contrast (InfoNCE on projections): video-video (clips B and C, two plain windows of one file; never
the transformed clip A, whose speed and direction the contrast would teach the encoder to ignore) and
video-audio (clip B and its in-sync audio), each over the batch plus a FeatureQueue of past keys from
momentum (EMA) copies of the encoders, whose entries become per-sample extra positives or negatives
by the rule of avssl.losses.queue_pairs. With `av_order_pieces`, the inter-modal order reads clip A
in pieces and a tenth term, piece_sync, matches clip B's video and audio order pieces of the same
instant (not in the paper; docs/methods.md). The loss is the weighted sum of the terms
(`method.weights`). The data recipe is avssl.data.recipes.temporal_av.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from avssl.config.typed import require
from avssl.data.recipes.temporal_av import TemporalAVRecipe
from avssl.data.views import in_source_order, order_classes
from avssl.losses.cross_entropy import pretext_cross_entropy
from avssl.losses.infonce import info_nce_with_queue, pair_mask
from avssl.losses.queue import FeatureQueue
from avssl.losses.queue_pairs import QueuePairs, cross_modal_info_nce_with_queue, sample_dependent_pairs
from avssl.methods.base import PretrainMethod
from avssl.methods.temporal_av_params import CONTRAST_TERMS, PRETEXT_TERMS, TemporalAVParams
from avssl.models.heads import ClipPretextHead, LagPretextHead, TuplePretextHead
from avssl.models.momentum import MomentumEncoder

log = logging.getLogger(__name__)

# the label each pretext head is trained on (speed and direction are shared by a sample's two modalities)
LABELS = {"video_speed": "speed", "audio_speed": "speed", "video_direction": "direction",
          "audio_direction": "direction", "video_order": "video_order", "audio_order": "audio_order",
          "av_order": "av_order"}
# a queue that gives fewer extra positives than this per sample after its start is reported
FEW_QUEUE_POSITIVES = 0.1


class TemporalAV(PretrainMethod):
    """Encoders, projections, seven pretext heads, momentum keys and a queue; loss = weighted sum of the terms."""

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
        require(clip.frames >= p.av_order_pieces, "method.av_order_pieces",
                f"({p.av_order_pieces}) must not exceed data.clip.frames ({clip.frames}): a piece needs a frame")
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
            "av_order": (TuplePretextHead([vdim, adim], 3, hidden) if p.av_order_pieces == 0 else
                         LagPretextHead(vdim, adim, p.av_order_pieces, p.av_order_pieces, 3,
                                        width=config.model.embed_dim, hidden_dim=hidden)),
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
        if p.av_order_pieces:
            classes["piece_sync_within_clip"] = 1.0 / p.num_subclips
        return {f"train/acc_{name}": value for name, value in classes.items()}

    # ----------------------------------------------------------------- forward

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Encoder features: video [3B, Dv] (rows :B clip A, B:2B clip B, 2B: clip C), video_parts
        [B, n, Dv], audio [2B, Da] (rows :B clip A's audio, B: audio_sync), audio_parts [B, n, Da] (and
        audio_parts_extra [B * (K - 1), n, Da] with `audio_order_windows` K > 1); the L2-normalised
        embeddings video_embed [2B, E] (clips B and C), audio_sync_embed [B, E]; with `av_order_pieces`,
        clip A's pieces video_a_pieces [B, n', Dv] and audio_a_pieces [B, n', Da]."""
        b, train = batch["video"].shape[0], self.training
        clips = torch.cat([batch["video"], batch["video_b"], batch["video_c"]])
        video = self.video_encoder(self.video_input(clips, train=train))
        parts = batch["video_parts"]
        video_parts = self.video_encoder(self.video_pieces_input(parts, train=train, stream=1))
        audio = self.audio_encoder(self.audio_input(torch.cat([batch["audio"], batch["audio_sync"]]), train=train))
        windows = batch["audio_parts"][:, None]
        if "audio_parts_extra" in batch:
            windows = torch.cat([windows, batch["audio_parts_extra"]], dim=1)  # [B, K, n, Q]
        n = parts.shape[1]
        audio_parts = self.audio_encoder(self.audio_pieces_input(windows.flatten(0, 1), train=train, stream=1))
        audio_parts = audio_parts.view(b, windows.shape[1], n, -1)
        out = {
            "video": video,
            "video_parts": video_parts.view(b, n, -1),
            "audio": audio,
            "audio_parts": audio_parts[:, 0],
            "video_embed": F.normalize(self.video_head(video[b:]), dim=1),
            "audio_sync_embed": F.normalize(self.audio_head(audio[b:]), dim=1),
        }
        if windows.shape[1] > 1:
            out["audio_parts_extra"] = audio_parts[:, 1:].flatten(0, 1)
        if self.params.av_order_pieces:
            out["video_a_pieces"], out["audio_a_pieces"] = self.encode_clip_a_pieces(batch)
        return out

    def encode_clip_a_pieces(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip A's video and audio each cut into `av_order_pieces` contiguous pieces (a remainder at the
        end dropped) and encoded one by one: [B, n, Dv], [B, n, Da], in the order the clip is played."""
        n, train = self.params.av_order_pieces, self.training
        video, audio = batch["video"], batch["audio"]
        b, frames = video.shape[0], video.shape[2] // n
        pieces = video[:, :, :n * frames].unflatten(2, (n, frames)).transpose(1, 2)  # [B, n, 3, frames, S, S]
        video_pieces = self.video_encoder(self.video_pieces_input(pieces, train=train, stream=2))
        samples = audio.shape[1] // n
        audio_pieces = self.audio_encoder(self.audio_pieces_input(audio[:, :n * samples].reshape(b, n, samples),
                                                                  train=train, stream=2))
        return video_pieces.view(b, n, -1), audio_pieces.view(b, n, -1)

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
            "av_order": (h["av_order"]([video_a, audio_a]) if not self.params.av_order_pieces
                         else h["av_order"](out["video_a_pieces"], out["audio_a_pieces"])),
        }

    @staticmethod
    def order_examples(name: str, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """What an order head trains on: encoded pieces [M, n, D] in the order shown and their labels [M]
        (clip B's pieces; for audio also the `audio_order_windows` - 1 extra windows of each sample)."""
        parts, labels = out[name.replace("order", "parts")], batch[name]
        if name == "audio_order" and "audio_parts_extra" in out:
            parts = torch.cat([parts, out["audio_parts_extra"]])
            labels = torch.cat([labels, batch["audio_order_extra"].flatten()])
        return parts, labels

    def every_order(self, name: str, parts: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """An order head on every permutation of each sample's pieces [B, n, D] (not only the one drawn):
        logits [B * n!, n!] and their labels [B * n!]. The pieces are encoded once; the head sees n! orders."""
        n = self.params.num_subclips
        classes = order_classes(n, False)
        source = in_source_order(parts, label, n)
        shown = source[:, torch.tensor(classes, device=parts.device)].flatten(0, 1)  # [B * n!, n, D]
        logits = self.heads[name](list(shown.unbind(1)))
        labels = torch.arange(len(classes), device=parts.device).repeat(parts.shape[0])
        return logits, labels

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
        terms = {"video_video": 0.5 * (b_to_c + c_to_b), "video_audio": video_audio}
        if p.av_order_pieces:
            terms["piece_sync"] = self.piece_sync_loss(out, batch)
        return terms, pairs

    def piece_sync_logits(self, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
        """Similarity / temperature of every video piece of clip B with every audio piece of the batch,
        [B * n, B * n], rows and columns sample-major in source order (the diagonal: the same instant),
        in the inter-modal order head's projections."""
        head, n = self.heads["av_order"], self.params.num_subclips
        video = in_source_order(out["video_parts"], batch["video_order"], n)
        audio = in_source_order(out["audio_parts"], batch["audio_order"], n)
        v = F.normalize(head.video_proj(video.flatten(0, 1)), dim=1)
        a = F.normalize(head.audio_proj(audio.flatten(0, 1)), dim=1)
        return v @ a.T / self.params.temperature

    def piece_sync_loss(self, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
        """InfoNCE between clip B's video and audio order pieces: each video piece's positive is the audio
        piece of the same instant; the batch's other audio pieces, the clip's own other pieces (0.1-0.5 s
        away) among them, are its negatives; both directions."""
        logits = self.piece_sync_logits(out, batch)
        target = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    @torch.no_grad()
    def piece_sync_within_clip(self, out: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor:
        """The share of clip B's video pieces whose own audio piece agrees best among the clip's n audio
        pieces (chance 1/n): timing, which content alone cannot tell."""
        n = self.params.num_subclips
        logits = self.piece_sync_logits(out, batch)
        b = len(logits) // n
        blocks = logits.view(b, n, b, n)[torch.arange(b), :, torch.arange(b)]  # [B, n, n]
        return (blocks.argmax(2) == torch.arange(n, device=logits.device)).float().mean()

    def losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Every term (scalars), their weighted sum `loss`, head accuracies (`acc_<term>`), the mean
        count of queue positives / negatives per sample, and the keys to enqueue (`keys`)."""
        out = self.encode(batch)
        logits, labels = self.pretext_logits(out), self.pretext_labels(batch)
        for name in ("video_order", "audio_order"):
            parts, order = self.order_examples(name, out, batch)
            if self.params.order_all_permutations:
                logits[name], labels[name] = self.every_order(name, parts, order)
            elif len(order) > len(labels[name]):  # the extra audio windows
                logits[name], labels[name] = self.heads[name](list(parts.unbind(1))), order
        terms = {name: pretext_cross_entropy(logits[name], labels[name]) for name in PRETEXT_TERMS}
        contrast, pairs = self.contrastive_losses(out, batch)
        terms.update(contrast)
        weights = self.params.weights
        result: dict[str, Any] = dict(terms)
        result["loss"] = sum(getattr(weights, name) * value for name, value in terms.items())
        with torch.no_grad():
            for name in PRETEXT_TERMS:
                result[f"acc_{name}"] = (logits[name].argmax(1) == labels[name]).float().mean()
            if "piece_sync" in terms:
                result["acc_piece_sync_within_clip"] = self.piece_sync_within_clip(out, batch)
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
            if name in result:
                self.log(f"train/{name}", result[name], batch_size=batch_size)
        for name in PRETEXT_TERMS:
            self.log(f"train/acc_{name}", result[f"acc_{name}"], batch_size=batch_size)
        if "acc_piece_sync_within_clip" in result:
            self.log("train/acc_piece_sync_within_clip", result["acc_piece_sync_within_clip"], batch_size=batch_size)
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

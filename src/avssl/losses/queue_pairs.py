"""Sample-dependent extra positives and negatives drawn from a feature queue (Black et al., AAAI 2023).

The paper supplements the usual contrastive pairs with positives and negatives chosen per sample
from a queue of past features; its exact rule is not available here, so this module implements a
stated one (assumed, following the cross-modal agreement of AVID-CMA):

For a query clip i with video embedding v_i and audio embedding a_i, and a queue whose slot j holds
the video key V_j and audio key A_j of one past clip:
1. Entries of the same video as the query (queue video id == query video id) are neither positive
   nor negative: they are dropped (they would be trivially close, or false negatives).
2. Agreement: s_ij = min(cos(v_i, V_j), cos(a_i, A_j)), high only for past clips that look like AND
   sound like the query.
3. Extra positives P(i): the ``num_neighbours`` eligible entries with the highest agreement (so every
   query has that many as soon as the queue holds them).
4. Entries among the ``num_neighbours`` nearest in one modality alone, N_v(i) or N_a(i), that are not
   positives are ambiguous and dropped (neither positive nor negative).
5. Negatives: the remaining eligible entries; with ``num_negatives`` set, only the hardest ones,
   ranked by the mean similarity (cos(v_i, V_j) + cos(a_i, A_j)) / 2.
The loss then uses the multi-positive InfoNCE of ``avssl.losses.infonce`` (log of the summed
positive terms over the summed candidate terms). Defaults (assumed): 5 neighbours, all negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avssl.losses.infonce import info_nce_with_queue


@dataclass(frozen=True)
class QueuePairs:
    """Per-query roles of the queue entries, each [B, K] bool; exactly one of the three is True."""

    positive: torch.Tensor
    negative: torch.Tensor

    @property
    def excluded(self) -> torch.Tensor:
        return ~(self.positive | self.negative)


def _top_k_mask(scores: torch.Tensor, eligible: torch.Tensor, k: int) -> torch.Tensor:
    """[B, K] bool: the k highest-scoring eligible entries of each row (fewer if fewer are eligible)."""
    if k <= 0 or scores.shape[1] == 0:
        return torch.zeros_like(eligible)
    masked = scores.masked_fill(~eligible, float("-inf"))
    top = masked.topk(min(k, scores.shape[1]), dim=1).indices
    chosen = torch.zeros_like(eligible)
    chosen.scatter_(1, top, True)
    return chosen & eligible


@torch.no_grad()
def sample_dependent_pairs(
    video: torch.Tensor,
    audio: torch.Tensor,
    queue_video: torch.Tensor,
    queue_audio: torch.Tensor,
    video_id: torch.Tensor,
    queue_video_id: torch.Tensor,
    num_neighbours: int = 5,
    num_negatives: int | None = None,
) -> QueuePairs:
    """Apply the module's rule. video, audio: [B, D]; queue_video, queue_audio: [K, D] (aligned
    slot by slot); video_id: [B]; queue_video_id: [K]. Returns QueuePairs with [B, K] masks.
    """
    if queue_video.shape != queue_audio.shape or queue_video.shape[0] != queue_video_id.shape[0]:
        raise ValueError("queue_video, queue_audio and queue_video_id must describe the same K entries")
    if num_negatives is not None and num_negatives < 0:
        raise ValueError(f"num_negatives must be >= 0 or None, got {num_negatives}")
    sim_video = F.normalize(video, dim=1) @ F.normalize(queue_video.to(video.dtype), dim=1).T
    sim_audio = F.normalize(audio, dim=1) @ F.normalize(queue_audio.to(audio.dtype), dim=1).T
    eligible = video_id.view(-1, 1) != queue_video_id.view(1, -1)
    positive = _top_k_mask(torch.minimum(sim_video, sim_audio), eligible, num_neighbours)
    near_video = _top_k_mask(sim_video, eligible, num_neighbours)
    near_audio = _top_k_mask(sim_audio, eligible, num_neighbours)
    negative = eligible & ~(positive | near_video | near_audio)
    if num_negatives is not None:
        negative = _top_k_mask((sim_video + sim_audio) / 2, negative, num_negatives)
    return QueuePairs(positive=positive, negative=negative)


def cross_modal_info_nce_with_queue(
    video: torch.Tensor,
    audio: torch.Tensor,
    queue_video: torch.Tensor,
    queue_audio: torch.Tensor,
    pairs: QueuePairs,
    temperature: float = 0.07,
    batch_exclude_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric video<->audio InfoNCE over the batch plus the queue, with ``pairs`` deciding each
    queue entry's role. video, audio: [B, D]; queue_*: [K, D]; batch_exclude_mask: [B, B]
    (row = video, column = audio). Returns (L(v->a) + L(a->v)) / 2, a scalar.
    """
    video_to_audio = info_nce_with_queue(
        video, audio, queue_audio, temperature, batch_exclude_mask, pairs.positive, pairs.excluded
    )
    exclude_t = None if batch_exclude_mask is None else batch_exclude_mask.T
    audio_to_video = info_nce_with_queue(
        audio, video, queue_video, temperature, exclude_t, pairs.positive, pairs.excluded
    )
    return 0.5 * (video_to_audio + audio_to_video)

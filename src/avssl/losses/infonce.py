"""InfoNCE losses: cross-modal (video <-> audio), intra-modal (two views), and against a feature queue.

All take embeddings [B, D] (any scale: they are L2-normalised here, so similarities are cosines)
and a temperature; the cross-modal ones also take video as a map of positions [B, P, D], whose
similarity with an audio is the largest over its positions (position_max_similarity). Positives and
excluded pairs are boolean masks whose rows are the queries. With several positives per query the
loss is the multi-positive (MIL-NCE) form

    L_i = -log( sum_{p in P_i} exp(s_ip / t) / sum_{j in P_i or N_i} exp(s_ij / t) )

which reduces to the usual InfoNCE with one positive; the candidate set is every key that is not
excluded, and a positive is never excluded (a mask marking it as both counts it as a positive).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def _check_mask(name: str, mask: torch.Tensor | None, shape: tuple[int, int]) -> None:
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != shape):
        raise ValueError(f"{name} must be a bool tensor of shape {list(shape)}, got "
                         f"{mask.dtype} {list(mask.shape)}")


def pair_mask(query_ids: torch.Tensor, key_ids: torch.Tensor) -> torch.Tensor:
    """[B] and [M] integer ids -> [B, M] bool, True where the ids are equal (same video / movie)."""
    return query_ids.view(-1, 1) == key_ids.view(1, -1)


def position_max_similarity(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """video [B, D] or a map of positions [B, P, D], audio [M, D] -> cosine similarities [B, M]; for a
    map, the largest over its positions (the multiple-instance similarity of sound-source
    localisation, as in EZ-VSL and AVOL-Net: the sound need only come from somewhere in the frame)."""
    a = F.normalize(audio, dim=-1)
    if video.dim() == 2:
        return F.normalize(video, dim=-1) @ a.T
    return torch.einsum("bpd,md->bmp", F.normalize(video, dim=-1), a).amax(dim=-1)


def _check_pair(video: torch.Tensor, audio: torch.Tensor) -> None:
    if (audio.dim() != 2 or video.dim() not in (2, 3) or video.shape[0] != audio.shape[0]
            or video.shape[-1] != audio.shape[-1]):
        raise ValueError(f"video must be [B, D] or [B, P, D] and audio [B, D], got {list(video.shape)} "
                         f"and {list(audio.shape)}")


def info_nce_from_similarity(
    similarity: torch.Tensor,
    positive_mask: torch.Tensor,
    temperature: float,
    exclude_mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Multi-positive InfoNCE from a similarity matrix.

    similarity: [B, M]; positive_mask: [B, M] bool, at least one True per row; exclude_mask:
    [B, M] bool, pairs removed from the negatives. Returns a scalar ("mean") or [B] ("none").
    """
    _check_temperature(temperature)
    _check_mask("positive_mask", positive_mask, tuple(similarity.shape))
    _check_mask("exclude_mask", exclude_mask, tuple(similarity.shape))
    if not positive_mask.any(dim=1).all():
        raise ValueError("every query needs at least one positive (a row of positive_mask is empty)")
    logits = similarity / temperature
    if exclude_mask is None:
        candidates = torch.ones_like(positive_mask)
    else:
        candidates = positive_mask | ~exclude_mask
    neg_inf = torch.finfo(logits.dtype).min
    log_positive = torch.logsumexp(logits.masked_fill(~positive_mask, neg_inf), dim=1)
    log_all = torch.logsumexp(logits.masked_fill(~candidates, neg_inf), dim=1)
    loss = log_all - log_positive
    if reduction == "mean":
        return loss.mean()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def info_nce(
    query: torch.Tensor,
    keys: torch.Tensor,
    temperature: float = 0.07,
    positive_mask: torch.Tensor | None = None,
    exclude_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One direction: queries [B, D] against keys [M, D]; query i's positive is key i by default.

    positive_mask / exclude_mask: [B, M] bool. Returns a scalar.
    """
    q, k = F.normalize(query, dim=1), F.normalize(keys, dim=1)
    if positive_mask is None:
        if k.shape[0] < q.shape[0]:
            raise ValueError("without positive_mask, keys must hold at least one key per query")
        positive_mask = torch.eye(q.shape[0], k.shape[0], dtype=torch.bool, device=q.device)
    return info_nce_from_similarity(q @ k.T, positive_mask, temperature, exclude_mask)


def cross_modal_info_nce(
    video: torch.Tensor,
    audio: torch.Tensor,
    temperature: float = 0.07,
    exclude_mask: torch.Tensor | None = None,
    extra_positive_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric video<->audio InfoNCE: (L(v->a) + L(a->v)) / 2 over the batch.

    video: [B, D] or positions [B, P, D] (position_max_similarity), audio: [B, D]; pair (i, i) is
    positive. exclude_mask: [B, B] bool, entry (i, j) removes audio j from video i's negatives (and
    video i from audio j's), e.g. ``pair_mask(video_id, video_id)`` for same-video pairs or
    ``pair_mask(movie_id, movie_id)`` for same-movie pairs.
    extra_positive_mask: [B, B] bool, further positive pairs (row = video, column = audio).
    """
    _check_pair(video, audio)
    batch = video.shape[0]
    positive = torch.eye(batch, dtype=torch.bool, device=video.device)
    if extra_positive_mask is not None:
        _check_mask("extra_positive_mask", extra_positive_mask, (batch, batch))
        positive = positive | extra_positive_mask
    similarity = position_max_similarity(video, audio)
    exclude_t = None if exclude_mask is None else exclude_mask.T
    video_to_audio = info_nce_from_similarity(similarity, positive, temperature, exclude_mask)
    audio_to_video = info_nce_from_similarity(similarity.T, positive.T, temperature, exclude_t)
    return 0.5 * (video_to_audio + audio_to_video)


def gathered_cross_modal_info_nce(
    video: torch.Tensor,
    audio: torch.Tensor,
    temperature: float = 0.07,
    group_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """cross_modal_info_nce with the negatives of every DDP rank (a method's `gather_distributed`).

    Each rank's video queries [B, D] (or position maps [B, P, D]) meet the audio keys of all ranks
    [R * B, D] and back; the gather keeps gradients, so every rank's embeddings learn from every
    rank's loss. The mean of the ranks' losses is the single-process loss on the union batch (every
    rank needs the same B).
    group_ids [B] int: pairs of one group other than a sample with itself are not negatives (the
    gathered form of exclude_mask = pair_mask(group_ids, group_ids)). Without an initialised process
    group of several ranks it is cross_modal_info_nce on the local batch.
    """
    _check_pair(video, audio)
    batch = video.shape[0]
    ids = torch.arange(batch, device=video.device) if group_ids is None else group_ids
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        exclude = pair_mask(ids, ids) & ~torch.eye(batch, dtype=torch.bool, device=video.device)
        return cross_modal_info_nce(video, audio, temperature, exclude_mask=exclude)
    sizes = [torch.zeros(1, dtype=torch.int64, device=video.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([batch], device=video.device))
    if any(int(s) != batch for s in sizes):
        raise ValueError(f"gather_distributed needs the same batch on every rank, got {[int(s) for s in sizes]}")
    offset = dist.get_rank() * batch
    all_v, all_a = gather_with_gradients(video), gather_with_gradients(audio)
    all_ids = [torch.empty_like(ids) for _ in sizes]
    dist.all_gather(all_ids, ids.contiguous())
    positive = torch.zeros(batch, len(all_v), dtype=torch.bool, device=video.device)
    positive[torch.arange(batch), offset + torch.arange(batch)] = True
    exclude = pair_mask(ids, torch.cat(all_ids)) & ~positive
    video_to_audio = info_nce_from_similarity(position_max_similarity(video, all_a), positive, temperature, exclude)
    audio_to_video = info_nce_from_similarity(position_max_similarity(all_v, audio).T, positive, temperature, exclude)
    return 0.5 * (video_to_audio + audio_to_video)


def gather_with_gradients(x: torch.Tensor) -> torch.Tensor:
    """Every rank's x [B, ...] concatenated [R * B, ...]; the gradient reaching the gathered tensor is
    summed back onto each rank's x, made contiguous before it goes: gloo's reduction reads a
    non-contiguous gradient (einsum's, for a map of positions) in the wrong order and returns wrong
    gradients without an error (the two-process test caught it)."""
    gathered = torch.cat(dist_nn.all_gather(x.contiguous()))
    if gathered.requires_grad:
        gathered.register_hook(lambda grad: grad.contiguous())
    return gathered


def cross_modal_top1(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Share of rows i whose most similar audio is audio i: video [B, D] or [B, P, D]
    (position_max_similarity), audio [B, D] -> scalar."""
    similarity = position_max_similarity(video, audio)
    return (similarity.argmax(dim=1) == torch.arange(len(video), device=video.device)).float().mean()


def intra_modal_info_nce(
    view1: torch.Tensor,
    view2: torch.Tensor,
    temperature: float = 0.07,
    exclude_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Two views of the same modality, NT-Xent (SimCLR) form, averaged over all 2B queries.

    view1, view2: [B, D]; sample i's two views are each other's positive; the negatives of a view
    are the other 2B - 2 embeddings of both views. exclude_mask: [B, B] bool over samples, entry
    (i, j) removes both views of sample j from sample i's negatives (e.g. same video).
    """
    if view1.shape != view2.shape or view1.dim() != 2:
        raise ValueError(
            f"view1 and view2 must both be [B, D], got {list(view1.shape)} and {list(view2.shape)}"
        )
    batch = view1.shape[0]
    device = view1.device
    z = F.normalize(torch.cat([view1, view2]), dim=1)
    index = torch.arange(2 * batch, device=device)
    positive = torch.zeros(2 * batch, 2 * batch, dtype=torch.bool, device=device)
    positive[index, (index + batch) % (2 * batch)] = True
    exclude = torch.eye(2 * batch, dtype=torch.bool, device=device)  # a view is not its own negative
    if exclude_mask is not None:
        _check_mask("exclude_mask", exclude_mask, (batch, batch))
        exclude = exclude | exclude_mask.repeat(2, 2)
    return info_nce_from_similarity(z @ z.T, positive, temperature, exclude)


def info_nce_with_queue(
    query: torch.Tensor,
    keys: torch.Tensor,
    queue_keys: torch.Tensor,
    temperature: float = 0.07,
    batch_exclude_mask: torch.Tensor | None = None,
    queue_positive_mask: torch.Tensor | None = None,
    queue_exclude_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One direction of InfoNCE whose keys are the batch plus a queue of past keys.

    query, keys: [B, D] (query i's positive is keys[i]); queue_keys: [K, D] (K may be 0).
    batch_exclude_mask: [B, B]; queue_positive_mask: [B, K] extra positives from the queue;
    queue_exclude_mask: [B, K] queue entries that are not negatives for that query (e.g. the
    same video, or everything outside a chosen hard-negative set). Returns a scalar.
    """
    batch, size = query.shape[0], queue_keys.shape[0]
    device = query.device
    q = F.normalize(query, dim=1)
    all_keys = F.normalize(torch.cat([keys, queue_keys.to(keys.dtype)]), dim=1)
    positive = torch.zeros(batch, batch + size, dtype=torch.bool, device=device)
    positive[:, :batch] = torch.eye(batch, dtype=torch.bool, device=device)
    exclude = torch.zeros_like(positive)
    if batch_exclude_mask is not None:
        _check_mask("batch_exclude_mask", batch_exclude_mask, (batch, batch))
        exclude[:, :batch] = batch_exclude_mask
    if queue_positive_mask is not None:
        _check_mask("queue_positive_mask", queue_positive_mask, (batch, size))
        positive[:, batch:] = queue_positive_mask
    if queue_exclude_mask is not None:
        _check_mask("queue_exclude_mask", queue_exclude_mask, (batch, size))
        exclude[:, batch:] = queue_exclude_mask
    return info_nce_from_similarity(q @ all_keys.T, positive, temperature, exclude)

"""The AVTS contrastive (margin) loss on the Euclidean distance between video and audio embeddings."""

from __future__ import annotations

import torch

AVTS_MARGIN = 0.99  # assumed: the value usually quoted for AVTS, not verified against the paper


def contrastive_margin_loss(
    video: torch.Tensor,
    audio: torch.Tensor,
    is_positive: torch.Tensor,
    margin: float = AVTS_MARGIN,
) -> torch.Tensor:
    """Hadsell-style contrastive loss over pairs, averaged over the batch.

    video, audio: [B, D] embeddings, compared as given (normalise them first if the margin is meant
    for unit vectors); is_positive: [B] bool or {0, 1}: 1 for an in-sync pair, 0 for an out-of-sync
    or mismatched pair. With d = ||v - a||_2, a positive pair costs d^2 (pull together) and a
    negative pair max(0, margin - d)^2 (push apart until the margin). Returns a scalar.
    """
    if video.shape != audio.shape or video.dim() != 2:
        raise ValueError(
            f"video and audio must both be [B, D], got {list(video.shape)} and {list(audio.shape)}"
        )
    if is_positive.shape != (video.shape[0],):
        raise ValueError(f"is_positive must be [{video.shape[0]}], got {list(is_positive.shape)}")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    label = is_positive.to(video.dtype)
    squared = (video - audio).pow(2).sum(dim=1)
    # sqrt's gradient is infinite at 0: take d from a clamped square, use the square for positives.
    distance = squared.clamp(min=1e-12).sqrt()
    negative_cost = torch.clamp(margin - distance, min=0).pow(2)
    return (label * squared + (1 - label) * negative_cost).mean()

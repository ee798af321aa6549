"""Cross-entropy for the pretext classification heads (speed, direction, order, sync offset)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pretext_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of logits [B, C] against integer labels [B] in [0, C).

    With label smoothing s the target is (1 - s) on the label plus s / C on every class.
    Labels out of range raise a ValueError naming the range (instead of a device-side assert).
    Returns a scalar.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be [B, C], got {list(logits.shape)}")
    if labels.shape != (logits.shape[0],) or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor [{logits.shape[0]}], got "
                         f"{labels.dtype} {list(labels.shape)}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    num_classes = logits.shape[1]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got min {int(labels.min())} "
                         f"max {int(labels.max())}")
    return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)

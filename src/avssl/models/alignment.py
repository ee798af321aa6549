"""CGRA: co-correlation guided representation alignment of video and audio representations.

Formulation (assumed; the paper's equations are not available, see docs/methods.md): project each
modality's pooled representation to a shared width D, standardise every dimension over the samples of
the batch that have audio, and form the co-correlation matrix between the modalities

    C_ij = (1/N) * sum_n  v~_ni * a~_nj          (D x D, each entry in [-1, 1])

The co-correlation guides the alignment: the loss pulls the diagonal to 1 (dimension i carries the
same information in both modalities) and pushes the off-diagonal to 0 (dimensions are decorrelated,
which rules out the collapsed solution where every dimension is the same):

    L = (1/D) * [ sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2 ]

Samples without audio do not enter C. With fewer than two such samples the batch statistics are
undefined and the loss is 0 (still attached to the graph, so a training step stays valid).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from avssl.models.heads import ProjectionMLP

logger = logging.getLogger(__name__)

_STANDARDISE_EPS = 1e-5  # as in BatchNorm: keeps a constant dimension finite


def co_correlation(video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """Cross-modal correlation matrix ``[D, D]`` of ``video`` ``[N, D]`` and ``audio`` ``[N, D]`` (N >= 2).

    Each dimension is standardised over the N samples (biased variance), so entry (i, j) is the
    Pearson correlation between video dimension i and audio dimension j.
    """
    if video.dim() != 2 or video.shape != audio.shape:
        raise ValueError(f"co_correlation expects video and audio of the same shape [N, D], "
                         f"got {list(video.shape)} and {list(audio.shape)}")
    if video.shape[0] < 2:
        raise ValueError(f"co_correlation needs at least 2 samples, got {video.shape[0]}")

    def standardise(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return (x - x.mean(dim=0)) / torch.sqrt(x.var(dim=0, unbiased=False) + _STANDARDISE_EPS)

    return standardise(video).T @ standardise(audio) / video.shape[0]


def cgra_loss(video: torch.Tensor, audio: torch.Tensor, off_diagonal_weight: float = 5e-3) -> torch.Tensor:
    """CGRA loss of ``video`` ``[N, D]`` and ``audio`` ``[N, D]``: scalar, 0 when C is the identity."""
    c = co_correlation(video, audio)
    diagonal = torch.diagonal(c)
    on = (1.0 - diagonal).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return (on + off_diagonal_weight * off) / c.shape[0]


class CGRA(nn.Module):
    """Projects video ``[B, video_dim]`` and audio ``[B, audio_dim]`` to ``[B, dim]`` and returns the CGRA loss.

    ``audio_present`` ``[B]`` bool (None = all present) excludes clips without audio.
    ``off_diagonal_weight`` (lambda) defaults to 5e-3, the redundancy weight of Barlow Twins.
    """

    def __init__(self, video_dim: int, audio_dim: int, dim: int = 128, hidden_dim: int = 512,
                 num_layers: int = 2, off_diagonal_weight: float = 5e-3) -> None:
        super().__init__()
        if off_diagonal_weight < 0:
            raise ValueError(f"CGRA off_diagonal_weight must be >= 0, got {off_diagonal_weight}")
        self.video_proj = ProjectionMLP(video_dim, hidden_dim, dim, num_layers=num_layers)
        self.audio_proj = ProjectionMLP(audio_dim, hidden_dim, dim, num_layers=num_layers)
        self.off_diagonal_weight = off_diagonal_weight
        self._warned_small_batch = False

    def forward(self, video: torch.Tensor, audio: torch.Tensor,
                audio_present: torch.Tensor | None = None) -> torch.Tensor:
        if audio_present is not None:
            if audio_present.shape != (video.shape[0],):
                raise ValueError(f"CGRA audio_present must be [B]={[video.shape[0]]}, got {list(audio_present.shape)}")
            keep = audio_present.to(device=video.device, dtype=torch.bool)
            video, audio = video[keep], audio[keep]
        if video.shape[0] < 2:
            if not self._warned_small_batch:
                logger.warning("CGRA: fewer than 2 clips with audio in a batch; its alignment loss is 0")
                self._warned_small_batch = True
            # every parameter stays in the graph so that distributed training sees no unused parameters
            return sum(p.sum() for p in self.parameters()) * 0.0 + (video.sum() + audio.sum()) * 0.0
        return cgra_loss(self.video_proj(video), self.audio_proj(audio), self.off_diagonal_weight)

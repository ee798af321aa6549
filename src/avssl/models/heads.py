"""Heads on pooled features: projection MLPs, linear classifiers and the temporal pretext heads.

Pretext heads: ``ClipPretextHead`` classifies one clip's features (playback speed, playback direction);
``TuplePretextHead`` classifies a pair or tuple of clips' features, possibly of different modalities
and widths (intra- or inter-modal temporal order); ``LagPretextHead`` classifies where one time line
lies relative to another from the similarities of their time bins (inter-modal order).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _check_features(x: torch.Tensor, in_dim: int, name: str) -> None:
    if x.dim() != 2 or x.shape[1] != in_dim:
        raise ValueError(f"{name} expects features [B, {in_dim}], got shape {list(x.shape)}")


class ProjectionMLP(nn.Module):
    """``num_layers`` linear layers; each but the last followed by (BatchNorm1d) and ReLU.

    ``[B, in_dim] -> [B, out_dim]``. ``num_layers=1`` is a single linear projection.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2,
                 batch_norm: bool = True) -> None:
        super().__init__()
        if num_layers < 1 or min(in_dim, hidden_dim, out_dim) < 1:
            raise ValueError(
                f"bad ProjectionMLP: in_dim={in_dim}, hidden_dim={hidden_dim}, out_dim={out_dim}, num_layers={num_layers}"
            )
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = []
        dim = in_dim
        for _ in range(num_layers - 1):
            # the bias is redundant in front of BN
            layers.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            dim = hidden_dim
        layers.append(nn.Linear(dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, self.in_dim, "ProjectionMLP")
        return self.net(x)


class LinearClassifier(nn.Module):
    """Optional dropout then one linear layer: ``[B, in_dim] -> [B, num_classes]`` logits."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"bad LinearClassifier: in_dim={in_dim}, num_classes={num_classes}, dropout={dropout}")
        self.in_dim, self.out_dim = in_dim, num_classes
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_dim, num_classes)
        # torchvision's initialisation of video classifiers
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, self.in_dim, "LinearClassifier")
        return self.fc(self.dropout(x))


def _classifier_mlp(in_dim: int, hidden_dim: int, num_classes: int) -> nn.Sequential:
    if hidden_dim <= 0:
        return nn.Sequential(nn.Linear(in_dim, num_classes))
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, num_classes))


class ClipPretextHead(nn.Module):
    """Classifies one clip's pooled features: ``[B, in_dim] -> [B, num_classes]`` logits.

    Used for playback speed (one class per speed) and playback direction (2 classes).
    ``hidden_dim=0`` makes it linear.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 512) -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 2:
            raise ValueError(f"bad ClipPretextHead: in_dim={in_dim}, num_classes={num_classes} (needs >= 2)")
        self.in_dim, self.num_classes = in_dim, num_classes
        self.net = _classifier_mlp(in_dim, hidden_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_features(x, self.in_dim, "ClipPretextHead")
        return self.net(x)


class TuplePretextHead(nn.Module):
    """Classifies an ordered tuple of clips' features, concatenated in the order given.

    ``forward([f_1, ..., f_N])`` with ``f_i: [B, in_dims[i]]`` returns ``[B, num_classes]`` logits.
    For temporal order, the tuple is presented in a shuffled order and the class is the permutation
    (``num_classes = N!``, see ``order_num_classes``); for a pair, 2 classes (in order or swapped).
    The widths may differ, so a (video, audio) pair serves inter-modal ordering.
    """

    def __init__(self, in_dims: Sequence[int], num_classes: int, hidden_dim: int = 512) -> None:
        super().__init__()
        if len(in_dims) < 2 or any(d < 1 for d in in_dims) or num_classes < 2:
            raise ValueError(f"bad TuplePretextHead: in_dims={list(in_dims)} (needs >= 2 clips), "
                             f"num_classes={num_classes} (needs >= 2)")
        self.in_dims = [int(d) for d in in_dims]
        self.num_classes = num_classes
        self.net = _classifier_mlp(sum(self.in_dims), hidden_dim, num_classes)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.in_dims):
            raise ValueError(f"TuplePretextHead expects {len(self.in_dims)} feature tensors, got {len(features)}")
        for i, (f, d) in enumerate(zip(features, self.in_dims)):
            _check_features(f, d, f"TuplePretextHead input {i}")
        return self.net(torch.cat(list(features), dim=1))


class LagPretextHead(nn.Module):
    """Classifies where an audio time line lies relative to a video one from their lag structure.

    ``forward(video [B, Nv, Dv], audio [B, Na, Da])``: each time bin of either modality is projected
    into a common width ``width`` and L2-normalised, and an MLP classifies the ``[Nv, Na]`` matrix of
    cosine similarities between every video bin and every audio bin -> ``[B, num_classes]`` logits.
    Audio in sync puts the agreement on the matrix's diagonal; audio shifted within the window moves
    it off the diagonal, to one side or the other with the sign of the shift. A head on pooled
    features (``TuplePretextHead``) sees neither: it has to find the time line inside two averages.
    """

    def __init__(self, video_dim: int, audio_dim: int, video_bins: int, audio_bins: int, num_classes: int,
                 width: int = 64, hidden_dim: int = 512) -> None:
        super().__init__()
        if min(video_dim, audio_dim, video_bins, audio_bins, width) < 1 or num_classes < 2:
            raise ValueError(f"bad LagPretextHead: dims {video_dim}/{audio_dim}, bins {video_bins}/{audio_bins}, "
                             f"width {width}, num_classes {num_classes}")
        self.video_dim, self.audio_dim = video_dim, audio_dim
        self.video_bins, self.audio_bins = video_bins, audio_bins
        self.num_classes = num_classes
        self.video_proj = nn.Linear(video_dim, width)
        self.audio_proj = nn.Linear(audio_dim, width)
        self.net = _classifier_mlp(video_bins * audio_bins, hidden_dim, num_classes)

    def similarities(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The cosine similarity of every video bin with every audio bin, ``[B, Nv, Na]``."""
        for x, bins, dim, name in ((video, self.video_bins, self.video_dim, "video"),
                                   (audio, self.audio_bins, self.audio_dim, "audio")):
            if x.dim() != 3 or x.shape[1:] != (bins, dim):
                raise ValueError(f"LagPretextHead expects {name} time bins [B, {bins}, {dim}], got shape {list(x.shape)}")
        v = F.normalize(self.video_proj(video), dim=-1)
        a = F.normalize(self.audio_proj(audio), dim=-1)
        return torch.einsum("bvd,bad->bva", v, a)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.net(self.similarities(video, audio).flatten(1))


def order_num_classes(num_clips: int) -> int:
    """Number of orderings of ``num_clips`` clips: the class count of an order head."""
    if num_clips < 2:
        raise ValueError(f"temporal order needs at least 2 clips, got {num_clips}")
    return math.factorial(num_clips)

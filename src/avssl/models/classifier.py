"""AVClassifier: video encoder + audio encoder + AMFM fusion + linear head, for audio-visual action recognition."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from avssl.errors import UsageError
from avssl.models.factory import build_audio_encoder, build_video_encoder
from avssl.models.fusion import AMFM, FusionOutput, tokens_from_map
from avssl.models.heads import LinearClassifier

_FUSION_OPTIONS = {"dim", "num_heads", "num_layers", "ffn_ratio", "dropout"}


class AVClassifier(nn.Module):
    """Classifies a clip from its frames and (possibly missing) audio.

    ``forward(video [B, 3, T, H, W], audio [B, 1, n_mels, frames] or None, audio_present [B] bool or None)``
    returns logits ``[B, num_classes]``. The audio encoder runs only on the clips that have audio, so a
    placeholder spectrogram for a clip without audio never reaches it (nor its batch-norm statistics).
    """

    def __init__(self, video_encoder: nn.Module, audio_encoder: nn.Module, fusion: AMFM, head: nn.Module) -> None:
        super().__init__()
        if fusion.video_dim != video_encoder.out_dim or fusion.audio_dim != audio_encoder.out_dim:
            raise ValueError(f"fusion expects video/audio widths {fusion.video_dim}/{fusion.audio_dim}, encoders give "
                             f"{video_encoder.out_dim}/{audio_encoder.out_dim}")
        self.video_encoder = video_encoder
        self.audio_encoder = audio_encoder
        self.fusion = fusion
        self.head = head

    def audio_tokens(self, audio: torch.Tensor | None, audio_present: torch.Tensor | None,
                     batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio tokens ``[B, Na, audio_dim]`` (zeros for clips without audio) and the clip mask ``[B]``."""
        if audio is None:
            present = torch.zeros(batch, dtype=torch.bool, device=device)
        elif audio_present is None:
            present = torch.ones(batch, dtype=torch.bool, device=device)
        else:
            if audio_present.shape != (batch,):
                raise ValueError(f"audio_present must be [B]={[batch]}, got {list(audio_present.shape)}")
            present = audio_present.to(device=device, dtype=torch.bool)
        if audio is not None and audio.shape[0] != batch:
            raise ValueError(f"audio batch {audio.shape[0]} differs from video batch {batch}")
        if not bool(present.any()):
            return torch.zeros(batch, 1, self.audio_encoder.out_dim, device=device), present
        encoded = tokens_from_map(self.audio_encoder(audio[present], return_map=True))
        tokens = encoded.new_zeros(batch, *encoded.shape[1:])
        tokens[present] = encoded
        return tokens, present

    def forward_features(self, video: torch.Tensor, audio: torch.Tensor | None = None,
                         audio_present: torch.Tensor | None = None) -> FusionOutput:
        """The fusion output (fused ``[B, dim]``, per-stream pooled features, mask) before the head."""
        video_tokens = tokens_from_map(self.video_encoder(video, return_map=True))
        audio_tokens, present = self.audio_tokens(audio, audio_present, video.shape[0], video.device)
        return self.fusion(video_tokens, audio_tokens.to(video_tokens.dtype), present)

    def forward(self, video: torch.Tensor, audio: torch.Tensor | None = None,
                audio_present: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.forward_features(video, audio, audio_present).fused)


def build_av_classifier(num_classes: int, video: Mapping[str, Any], audio: Mapping[str, Any],
                        fusion: Mapping[str, Any] | None = None, dropout: float = 0.0) -> AVClassifier:
    """Build from plain config values, e.g.
    ``build_av_classifier(32, {"name": "r2plus1d_18-tiny"}, {"name": "vgg_audio-tiny"}, {"dim": 64})``.

    ``video``/``audio``: ``{"name": ..., **knobs}``; ``fusion``: AMFM options (dim, num_heads, num_layers,
    ffn_ratio, dropout).
    """
    for key, value in (("video", video), ("audio", audio)):
        if not isinstance(value, Mapping) or "name" not in value:
            raise UsageError(f"classifier option {key!r} must be a mapping with a 'name' key, got {value!r}")
    fusion = dict(fusion or {})
    unknown = sorted(set(fusion) - _FUSION_OPTIONS)
    if unknown:
        raise UsageError(f"fusion has no option {unknown[0]!r}; options: {sorted(_FUSION_OPTIONS)}")
    video_encoder = build_video_encoder(video["name"], **{k: v for k, v in video.items() if k != "name"})
    audio_encoder = build_audio_encoder(audio["name"], **{k: v for k, v in audio.items() if k != "name"})
    amfm = AMFM(video_encoder.out_dim, audio_encoder.out_dim, **fusion)
    head = LinearClassifier(amfm.out_dim, num_classes, dropout=dropout)
    return AVClassifier(video_encoder, audio_encoder, amfm, head)

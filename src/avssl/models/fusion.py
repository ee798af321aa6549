"""AMFM: attention-based multi-modal fusion of video and audio token sequences, with a modality mask.

Formulation (docs/methods.md, "Models and fusion"): both token sequences are projected to a common
width and tagged with a learned modality embedding; each layer updates video tokens by cross-attention
to audio tokens and audio tokens by cross-attention to video tokens (pre-norm, residual, then a
feed-forward block); a learned query then attention-pools the joint sequence [video; audio] into one
fused vector. Missing audio is explicit: ``audio_mask`` marks which audio tokens exist; masked tokens
are excluded from every attention and every pool (their values never reach the output), and for a
clip with no audio at all the audio-to-video update is switched off, so its output is a function of
its video alone.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class FusionOutput(NamedTuple):
    """What AMFM returns. Shapes: fused/video/audio ``[B, dim]``, audio_present ``[B]`` bool.

    ``audio`` is the masked mean of the attended audio tokens; it is zeros where ``audio_present`` is
    False and must not be used there.
    """

    fused: torch.Tensor
    video: torch.Tensor
    audio: torch.Tensor
    audio_present: torch.Tensor


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention of queries ``[B, Nq, D]`` over context ``[B, Nk, D]``, then a feed-forward block."""

    def __init__(self, dim: int, num_heads: int, ffn_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_ffn = nn.LayerNorm(dim)
        hidden = int(dim * ffn_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_padding: torch.Tensor,
                gate: torch.Tensor) -> torch.Tensor:
        """``context_padding`` ``[B, Nk]`` True = ignore; ``gate`` ``[B]`` scales the attention update
        (0 switches it off for a sample whose context is entirely missing)."""
        kv = self.norm_kv(context)
        update, _ = self.attn(self.norm_q(x), kv, kv, key_padding_mask=context_padding, need_weights=False)
        x = x + update * gate[:, None, None]
        return x + self.ffn(self.norm_ffn(x))


def normalize_audio_mask(audio_mask: torch.Tensor | None, batch: int, num_tokens: int,
                         device: torch.device) -> torch.Tensor:
    """``None`` (all present), ``[B]`` (per clip) or ``[B, Na]`` (per token) -> bool ``[B, Na]``, True = present."""
    if audio_mask is None:
        return torch.ones(batch, num_tokens, dtype=torch.bool, device=device)
    mask = audio_mask.to(device=device, dtype=torch.bool)
    if mask.shape == (batch,):
        return mask[:, None].expand(batch, num_tokens)
    if mask.shape == (batch, num_tokens):
        return mask
    raise ValueError(f"audio_mask must be [B]={[batch]} or [B, Na]={[batch, num_tokens]}, got {list(mask.shape)}")


class AMFM(nn.Module):
    """Attention-based multi-modal fusion.

    ``forward(video_tokens [B, Nv, video_dim], audio_tokens [B, Na, audio_dim], audio_mask)`` returns a
    ``FusionOutput`` whose ``fused`` is ``[B, dim]``. ``audio_mask``: None, ``[B]`` or ``[B, Na]`` bool,
    True where audio exists.
    """

    def __init__(self, video_dim: int, audio_dim: int, dim: int = 256, num_heads: int = 4, num_layers: int = 1,
                 ffn_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        if min(video_dim, audio_dim, dim, num_heads, num_layers) < 1 or dim % num_heads:
            raise ValueError(f"bad AMFM: video_dim={video_dim}, audio_dim={audio_dim}, dim={dim} "
                             f"(must divide by num_heads={num_heads}), num_layers={num_layers}")
        self.video_dim, self.audio_dim, self.out_dim = video_dim, audio_dim, dim
        self.video_in = nn.Linear(video_dim, dim)
        self.audio_in = nn.Linear(audio_dim, dim)
        self.video_type = nn.Parameter(torch.zeros(dim))
        self.audio_type = nn.Parameter(torch.zeros(dim))
        self.video_from_audio = nn.ModuleList(
            CrossAttentionBlock(dim, num_heads, ffn_ratio, dropout) for _ in range(num_layers))
        self.audio_from_video = nn.ModuleList(
            CrossAttentionBlock(dim, num_heads, ffn_ratio, dropout) for _ in range(num_layers))
        self.pool_query = nn.Parameter(torch.zeros(1, 1, dim))
        self.pool_norm = nn.LayerNorm(dim)
        self.pool_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.out_norm = nn.LayerNorm(dim)
        for p in (self.video_type, self.audio_type, self.pool_query):
            nn.init.normal_(p, std=0.02)

    def forward(self, video_tokens: torch.Tensor, audio_tokens: torch.Tensor,
                audio_mask: torch.Tensor | None = None) -> FusionOutput:
        if video_tokens.dim() != 3 or video_tokens.shape[2] != self.video_dim:
            raise ValueError(f"AMFM expects video tokens [B, Nv, {self.video_dim}], got {list(video_tokens.shape)}")
        if (audio_tokens.dim() != 3 or audio_tokens.shape[2] != self.audio_dim
                or audio_tokens.shape[0] != video_tokens.shape[0]):
            raise ValueError(f"AMFM expects audio tokens [B={video_tokens.shape[0]}, Na, {self.audio_dim}], "
                             f"got {list(audio_tokens.shape)}")
        batch, num_audio = audio_tokens.shape[:2]
        present = normalize_audio_mask(audio_mask, batch, num_audio, audio_tokens.device)
        clip_has_audio = present.any(dim=1)
        # zero the missing tokens first so that their values (even NaN) cannot reach any output
        audio_tokens = torch.where(present[..., None], audio_tokens, torch.zeros((), dtype=audio_tokens.dtype,
                                                                                  device=audio_tokens.device))
        # a clip with no audio would have every key masked (softmax of all -inf is NaN): give it one
        # dummy key and switch its update off with the gate instead
        audio_padding = ~present
        audio_padding[:, 0] &= clip_has_audio
        video = self.video_in(video_tokens) + self.video_type
        audio = self.audio_in(audio_tokens) + self.audio_type
        video_padding = torch.zeros(video.shape[:2], dtype=torch.bool, device=video.device)
        gate_audio = clip_has_audio.to(video.dtype)
        gate_video = torch.ones_like(gate_audio)
        for v_block, a_block in zip(self.video_from_audio, self.audio_from_video):
            video, audio = (v_block(video, audio, audio_padding, gate_audio),
                            a_block(audio, video, video_padding, gate_video))
        joint = self.pool_norm(torch.cat([video, audio], dim=1))
        joint_padding = torch.cat([video_padding, ~present], dim=1)
        query = self.pool_query.expand(batch, -1, -1)
        fused, _ = self.pool_attn(query, joint, joint, key_padding_mask=joint_padding, need_weights=False)
        weights = present.to(audio.dtype)[..., None]
        audio_pooled = (audio * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return FusionOutput(fused=self.out_norm(fused[:, 0]), video=video.mean(dim=1), audio=audio_pooled,
                            audio_present=clip_has_audio)


def tokens_from_map(feature_map: torch.Tensor) -> torch.Tensor:
    """Encoder feature map ``[B, C, *spatial]`` (video ``[B, C, T', H', W']``, audio ``[B, C, F', T']``)
    -> token sequence ``[B, N, C]`` with N the product of the spatial sizes."""
    if feature_map.dim() < 3:
        raise ValueError(f"expected a feature map [B, C, ...], got shape {list(feature_map.shape)}")
    return feature_map.flatten(2).transpose(1, 2)

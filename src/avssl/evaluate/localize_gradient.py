"""Gradient maps: which pixels a window's audio-video sync is most sensitive to.

Per window, the sync margin is the score of the clip's video with the window's own audio minus its
mean score with the same file's audio half a window earlier and later (the negatives AVTS trains on:
the same scene, out of sync), scored as the model compares the two (avssl.evaluate.av_model.score_kind).
The map is the magnitude of the margin's gradient with respect to the prepared input frames, summed
over colour and over the window's frames (input-gradient saliency, Simonyan et al. 2014): large where
a small change of the pixels would change how much better the own audio fits than the shifted one.
Sensitivity is not use: a static background pixel can be sensitive and carry none of the sync
(docs/benchmarks.md: a trained AVTS's evidence lies on the objects' paths, its gradient map off them).
A window whose shifted audio falls outside the file on both sides maps the gradient of its own score.

Unlike the "raw" / "contrast" maps (avssl.evaluate.localize) the whole clip goes through the model as
at training, and unlike "occlusion" there is one backward pass per batch of windows, not one forward
pass per square. The map has the input frames' resolution (a pixel each), not the encoder map's.
"""

from __future__ import annotations

import torch

from avssl.evaluate.av_model import pair_scores


def shifted_starts(start: float, window: float, duration: float) -> list[float]:
    """The starts half a window before and after `start` whose audio window lies inside the file."""
    out = [start + sign * window / 2 for sign in (-1, 1)]
    return [s for s in out if s >= 0 and s + window <= duration + 1e-9]


def sync_margins(video: torch.Tensor, own: torch.Tensor, shifted: list[torch.Tensor], kind: str) -> torch.Tensor:
    """[B]: pair_scores of video [B, E] with own [B, E] minus the mean score with each row's shifted
    audio embeddings shifted[b] [K_b, E] (K_b = 0: the own score alone)."""
    margins = []
    for v, a, negatives in zip(video, own, shifted):
        margin = pair_scores(v, a, kind)
        if len(negatives):
            margin = margin - pair_scores(v[None], negatives, kind).mean()
        margins.append(margin)
    return torch.stack(margins)


def gradient_maps(method, clips: torch.Tensor, own: torch.Tensor, shifted: list[torch.Tensor],
                  kind: str) -> torch.Tensor:
    """float [B, H, W]: |d margin / d input| summed over colour and frames, for uint8 clips
    [B, 3, T, H, W] and the windows' audio embeddings (sync_margins). In eval mode the windows of a
    batch do not interact (BatchNorm uses its running statistics), so one backward pass of the summed
    margins gives each window's own gradient."""
    with torch.enable_grad():
        x = method.video_input(clips.to(method.device), train=False).detach().requires_grad_(True)
        video = method.embed_video(x)
        negatives = [n.to(video.device) for n in shifted]
        margins = sync_margins(video, own.to(video.device), negatives, kind)
        (grad,) = torch.autograd.grad(margins.sum(), x)
    return grad.abs().sum(dim=(1, 2)).float().cpu()

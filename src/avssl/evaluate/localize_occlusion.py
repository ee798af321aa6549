"""Occlusion maps: where in the frame the agreement between a window's video and its audio comes from.

For each patch position (a square of `patch` px, moved in steps of half a patch over the whole
frame), the patch is stilled in every frame of the clip: replaced by its own mean over the clip's
frames, so that what stands there stays and what moves or changes there is gone. The map at a pixel
is the mean, over the patches that cover it, of how much the video-audio agreement drops when the
patch is stilled: the cosine similarity of the pooled joint-space embeddings (embed_video,
embed_audio), the quantity the methods train (AVTS's distance is a function of it for unit vectors).
Positive where the motion is part of why this audio matches this video. This is occlusion sensitivity
(Zeiler & Fergus 2014) with a fill that keeps the appearance: the question is which motion the sound
goes with, not which object is salient.

Unlike the "raw" / "contrast" maps (avssl.evaluate.localize), nothing is applied to a map position
the projection head never saw at training: each variant goes through the model as a whole clip.
Cost: one video forward pass per patch position and window (about 11 x 15 positions at the tiny
configs' 37 x 49 px frames).
"""

from __future__ import annotations

import torch

from avssl.errors import UsageError


def default_patch(height: int, width: int) -> int:
    """A sixth of the frame's short side, at least 4 px: about the size of a sounding object at the
    demo world's scale, and few enough positions to stay cheap."""
    return max(4, round(min(height, width) / 6))


def patch_corners(height: int, width: int, patch: int) -> list[tuple[int, int]]:
    """Top-left corners of `patch` x `patch` squares every patch // 2 px whose union is the whole
    frame (the last row and column sit against the far edges)."""
    if not 1 <= patch <= min(height, width):
        raise UsageError(f"--patch must be between 1 and the frame's short side ({min(height, width)} px), got {patch}")
    step = max(1, patch // 2)

    def starts(size: int) -> list[int]:
        out = list(range(0, size - patch + 1, step))
        return out if out[-1] == size - patch else out + [size - patch]

    return [(y, x) for y in starts(height) for x in starts(width)]


def stilled_variants(clip: torch.Tensor, corners: list[tuple[int, int]], patch: int) -> torch.Tensor:
    """uint8 [3, T, H, W] -> [len(corners), 3, T, H, W]: the clip with one patch stilled in each."""
    still = clip.float().mean(dim=1, keepdim=True).round().to(clip.dtype)  # [3, 1, H, W]
    variants = clip.unsqueeze(0).repeat(len(corners), 1, 1, 1, 1)
    for i, (y, x) in enumerate(corners):
        variants[i, :, :, y:y + patch, x:x + patch] = still[:, :, y:y + patch, x:x + patch]
    return variants


@torch.no_grad()
def stilling_effects(method, clip: torch.Tensor, patch: int, batch_size: int = 32) -> torch.Tensor:
    """float [P, E]: for each patch position of one window (clip uint8 [3, T, H, W]), the clip's
    joint-space video embedding minus that of the clip with the patch stilled. Its dot product with
    an audio embedding is how much the agreement with that audio drops."""
    device = method.device

    def embed(x: torch.Tensor) -> torch.Tensor:
        return method.embed_video(method.video_input(x.to(device), train=False)).float().cpu()

    corners = patch_corners(*clip.shape[-2:], patch)
    # a batch of variants at a time: all of them at once would hold P copies of the clip
    stilled = [embed(stilled_variants(clip, corners[i:i + batch_size], patch))
               for i in range(0, len(corners), batch_size)]
    return embed(clip.unsqueeze(0)) - torch.cat(stilled)


def drop_map(drops: torch.Tensor, size: tuple[int, int], patch: int) -> torch.Tensor:
    """float [H, W]: the mean of drops [P] (one per patch_corners(H, W, patch) position) over the
    patches covering each pixel."""
    height, width = size
    total, count = torch.zeros(height, width), torch.zeros(height, width)
    for drop, (y, x) in zip(drops.tolist(), patch_corners(height, width, patch)):
        total[y:y + patch, x:x + patch] += drop
        count[y:y + patch, x:x + patch] += 1
    return total / count

"""The training crop on uint8 frames: one box and one flip per view for all its frames, seeded draws."""

import torch

from avssl.config.data import VideoAugmentConfig
from avssl.data.clip_io import random_crop_flip
from avssl.data.transforms import sample_crop_boxes


def ramp_frames(frames: int = 4, height: int = 24, width: int = 32) -> torch.Tensor:
    """uint8 [T, H, W, 3]: pixel = (x + 2y + 5t + 40c) % 256, so crops and flips are traceable."""
    t = torch.arange(frames).view(frames, 1, 1, 1)
    y = torch.arange(height).view(1, height, 1, 1)
    x = torch.arange(width).view(1, 1, width, 1)
    c = torch.arange(3).view(1, 1, 1, 3)
    return ((x + 2 * y + 5 * t + 40 * c) % 256).to(torch.uint8)


def test_each_view_crops_every_frame_with_one_box():
    augment = VideoAugmentConfig(size=16, crop_scale=(0.3, 1.0), flip_p=0.5)
    out = random_crop_flip(ramp_frames(), (16, 16), augment, torch.Generator().manual_seed(1), views=3)
    assert out.shape == (3, 3, 4, 16, 16) and out.dtype == torch.uint8
    # frames differ only by the 5 * t offset: every frame of a view was cut at the same box
    diff = out[:, :, 1:].int() - out[:, :, :1].int()
    assert (diff - 5 * torch.arange(1, 4).view(1, 1, 3, 1, 1)).abs().max() <= 1  # resize rounding


def test_boxes_then_flips_are_the_drawn_ones():
    """Full-frame boxes (scale 1, ratio of the frame) make the crop an identity, so the output shows the
    flip decisions: they are the draws that follow the boxes in the generator."""
    frames = ramp_frames(height=24, width=32)
    augment = VideoAugmentConfig(size=24, crop_scale=(1.0, 1.0), crop_ratio=(4 / 3, 4 / 3), flip_p=0.5)
    views = 32
    out = random_crop_flip(frames, (24, 32), augment, torch.Generator().manual_seed(5), views=views)
    reference = torch.Generator().manual_seed(5)
    boxes = sample_crop_boxes(views, 24, 32, (1.0, 1.0), (4 / 3, 4 / 3), generator=reference)
    assert boxes.tolist() == [[0, 0, 24, 32]] * views
    flips = (torch.rand(views, generator=reference) < 0.5).tolist()
    clip = frames.permute(3, 0, 1, 2)
    for view, flip in zip(out, flips):
        assert torch.equal(view, clip.flip(-1) if flip else clip)
    assert 4 < sum(flips) < 28


def test_same_seed_same_views_and_views_differ():
    augment = VideoAugmentConfig(size=16, crop_scale=(0.2, 0.6))
    a = random_crop_flip(ramp_frames(), (16, 16), augment, torch.Generator().manual_seed(7), views=2)
    b = random_crop_flip(ramp_frames(), (16, 16), augment, torch.Generator().manual_seed(7), views=2)
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])

"""A stand-in model for the sound-map tests (occlusion, gradient): its video embedding reads the
motion in one region of the frame only. A module with a unique name (several test folders have a
conftest)."""

from __future__ import annotations

import torch


class MotionSensor(torch.nn.Module):
    """A stand-in model whose video embedding moves with the motion in one region (y0, y1, x0, x1)."""

    device = torch.device("cpu")

    def __init__(self, region):
        super().__init__()
        self.region = region

    def video_input(self, x, train=False):
        return x.float()

    def embed_video(self, x):
        y0, y1, x0, x1 = self.region
        motion = x[:, :, :, y0:y1, x0:x1].std(dim=2).mean(dim=(1, 2, 3))
        return torch.nn.functional.normalize(torch.stack([motion / 50, torch.ones_like(motion)], dim=1), dim=1)

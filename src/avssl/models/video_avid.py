"""AVID-CMA's R(2+1)D video encoder, with upstream's module names so its released weights load by name.

Follows facebookresearch/AVID-CMA ``models/video.py`` (``R2Plus1D``) and ``models/network_blocks.py``
(``BasicR2P1DBlock``) at commit 9250866718d0. It differs from torchvision's R(2+1)D-18
(``avssl.models.video``) in structure, not only in names:

- the stem ``conv1`` is a full 3x7x7 conv (stride 1x2x2), BN, ReLU and a 1x3x3 max pool (stride 1x2x2);
- a block's spatial and temporal convs are all as wide as the block's output (no mid-planes formula),
  each of the first three followed by BN and ReLU; the residual sum goes through ``out_bn`` then ReLU;
- the shortcut is the identity, or a bare strided 1x1x1 ``res_conv`` (no BN) when the width or the
  stride changes; a stage's first block strides 2x2x2 from the second stage on;
- the trunk is pooled by a global max (``AdaptiveMaxPool3d(1)``), not an average.

Stages are ``conv2x``.. (upstream's depth 18 is ``layers=[2, 2, 2, 2]``, 64-128-256-512 channels, 512
out). Each stage is an ``nn.Sequential`` of blocks, which is upstream's naming for depths 18 and 34
(upstream's depth 10 puts a bare block in a stage instead). Weights start at PyTorch's defaults, as
upstream's do.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

AVID_R2PLUS1D_NAME = "avid_r2plus1d_18"
_REFERENCE_WIDTH = 64


class AvidR2Plus1DBlock(nn.Module):
    """Two (2+1)D convs of full width with BN after the residual sum (AVID-CMA ``BasicR2P1DBlock``).

    ``[B, in_planes, T, H, W] -> [B, out_planes, T / s, H / s, W / s]`` for stride ``s``.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int = 1) -> None:
        super().__init__()
        self.spt_conv1 = nn.Conv3d(in_planes, out_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                                   padding=(0, 1, 1), bias=False)
        self.spt_bn1 = nn.BatchNorm3d(out_planes)
        self.tmp_conv1 = nn.Conv3d(out_planes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                                   padding=(1, 0, 0), bias=False)
        self.tmp_bn1 = nn.BatchNorm3d(out_planes)
        self.spt_conv2 = nn.Conv3d(out_planes, out_planes, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False)
        self.spt_bn2 = nn.BatchNorm3d(out_planes)
        self.tmp_conv2 = nn.Conv3d(out_planes, out_planes, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)
        self.out_bn = nn.BatchNorm3d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.res_conv: nn.Conv3d | None = None
        if in_planes != out_planes or stride != 1:
            self.res_conv = nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.spt_bn1(self.spt_conv1(x)))
        out = self.relu(self.tmp_bn1(self.tmp_conv1(out)))
        out = self.relu(self.spt_bn2(self.spt_conv2(out)))
        out = self.tmp_conv2(out)
        residual = x if self.res_conv is None else self.res_conv(x)
        return self.relu(self.out_bn(out + residual))


def avid_stem(in_channels: int, width: int) -> nn.Sequential:
    """3x7x7 conv (stride 1x2x2), BN, ReLU, then a 1x3x3 max pool (stride 1x2x2): spatial size / 4."""
    return nn.Sequential(
        nn.Conv3d(in_channels, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
    )


class AvidR2Plus1D(nn.Module):
    """AVID-CMA's R2Plus1D trunk (``conv1``, ``conv2x``..), with width and depth knobs.

    Input ``[B, C, T, H, W]`` normalised float. ``forward`` returns ``[B, out_dim]`` after global max
    pooling, or the last stage's feature map ``[B, out_dim, T', H', W']`` with ``return_map=True``
    (2x4x4 for 16x112x112 at four stages).
    """

    def __init__(self, width: int = _REFERENCE_WIDTH, layers: Sequence[int] = (2, 2, 2, 2),
                 in_channels: int = 3) -> None:
        super().__init__()
        if width < 1 or in_channels < 1 or not layers or any(n < 1 for n in layers):
            raise ValueError(f"bad {AVID_R2PLUS1D_NAME} knobs: width={width}, layers={list(layers)}, "
                             f"in_channels={in_channels}")
        self.config = {"name": AVID_R2PLUS1D_NAME, "width": int(width), "layers": [int(n) for n in layers],
                       "in_channels": int(in_channels)}
        self.in_channels = in_channels
        self.conv1 = avid_stem(in_channels, width)
        planes_in = width
        self.stage_names = [f"conv{stage + 2}x" for stage in range(len(layers))]
        for stage, num_blocks in enumerate(layers):
            planes = width * 2**stage
            blocks = [AvidR2Plus1DBlock(planes_in, planes, stride=1 if stage == 0 else 2)]
            blocks += [AvidR2Plus1DBlock(planes, planes) for _ in range(1, num_blocks)]
            self.add_module(self.stage_names[stage], nn.Sequential(*blocks))
            planes_in = planes
        self.out_dim = planes_in

    def forward(self, x: torch.Tensor, return_map: bool = False) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{AVID_R2PLUS1D_NAME} expects video [B, {self.in_channels}, T, H, W], got shape {list(x.shape)}"
            )
        x = self.conv1(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        if return_map:
            return x
        return x.amax(dim=(2, 3, 4))

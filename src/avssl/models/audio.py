"""Audio encoders on log-mel spectrograms: a 2D ResNet-18 and a compact VGG-style conv net.

Both take ``[B, 1, n_mels, frames]`` and return ``[B, out_dim]`` after global average pooling, or the
time-frequency feature map ``[B, out_dim, F', T']`` with ``return_map=True``. The ResNet follows
torchvision's resnet18 layout and key names (7x7 stride-2 stem, 3x3 max-pool, four stages of basic
blocks) with a configurable number of input channels.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class BasicBlock2d(nn.Module):
    """Two 3x3 convs with BN; ReLU after the first and after the residual sum; 1x1 projection shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


def _check_spectrogram(x: torch.Tensor, name: str, in_channels: int) -> None:
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{name} expects log-mel [B, {in_channels}, n_mels, frames], got shape {list(x.shape)}")


class AudioResNet(nn.Module):
    """2D ResNet (resnet18 layout at the default knobs) over a log-mel spectrogram.

    Input ``[B, in_channels, n_mels, frames]``; output ``[B, out_dim]`` or map ``[B, out_dim, F', T']``
    (F' = n_mels / 32, T' = frames / 32, rounded up, for four stages).
    """

    def __init__(self, width: int = 64, layers: Sequence[int] = (2, 2, 2, 2), in_channels: int = 1) -> None:
        super().__init__()
        if width < 1 or in_channels < 1 or not layers or any(n < 1 for n in layers):
            raise ValueError(f"bad AudioResNet knobs: width={width}, layers={list(layers)}, in_channels={in_channels}")
        self.config = {"name": "resnet18_audio", "width": int(width), "layers": [int(n) for n in layers],
                       "in_channels": int(in_channels)}
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes_in = width
        for stage, num_blocks in enumerate(layers):
            planes = width * 2**stage
            stride = 1 if stage == 0 else 2
            blocks = [BasicBlock2d(planes_in, planes, stride)]
            blocks += [BasicBlock2d(planes, planes) for _ in range(1, num_blocks)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
            planes_in = planes
        self.num_stages = len(layers)
        self.out_dim = planes_in
        _init_weights(self)

    def forward(self, x: torch.Tensor, return_map: bool = False) -> torch.Tensor:
        _check_spectrogram(x, "resnet18_audio", self.in_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        if return_map:
            return x
        return x.mean(dim=(2, 3))


class AudioVGG(nn.Module):
    """Compact VGG-style net: stages of [3x3 conv, BN, ReLU] x n followed by 2x2 max-pool.

    Stage i has ``width * 2**i`` channels and ``convs[i]`` convs. The default (1, 1, 2, 2) convs with
    width 64 (64-128-256-512 channels, about 4.5 M parameters) is the size of the audio nets used by
    AVTS-style synchronisation models. Input ``[B, in_channels, n_mels, frames]``; output
    ``[B, out_dim]`` or map ``[B, out_dim, F', T']`` with F' = n_mels // 2**stages.
    """

    def __init__(self, width: int = 64, convs: Sequence[int] = (1, 1, 2, 2), in_channels: int = 1) -> None:
        super().__init__()
        if width < 1 or in_channels < 1 or not convs or any(n < 1 for n in convs):
            raise ValueError(f"bad AudioVGG knobs: width={width}, convs={list(convs)}, in_channels={in_channels}")
        self.config = {"name": "vgg_audio", "width": int(width), "convs": [int(n) for n in convs],
                       "in_channels": int(in_channels)}
        self.in_channels = in_channels
        self.min_input = 2 ** len(convs)
        layers: list[nn.Module] = []
        planes_in = in_channels
        for stage, num_convs in enumerate(convs):
            planes = width * 2**stage
            for _ in range(num_convs):
                layers += [nn.Conv2d(planes_in, planes, kernel_size=3, padding=1, bias=False),
                           nn.BatchNorm2d(planes), nn.ReLU(inplace=True)]
                planes_in = planes
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.out_dim = planes_in
        _init_weights(self)

    def forward(self, x: torch.Tensor, return_map: bool = False) -> torch.Tensor:
        _check_spectrogram(x, "vgg_audio", self.in_channels)
        if min(x.shape[2], x.shape[3]) < self.min_input:
            raise ValueError(
                f"vgg_audio with {len(self.config['convs'])} pooling stages needs at least "
                f"{self.min_input} mel bins and frames, got shape {list(x.shape)}"
            )
        x = self.features(x)
        if return_map:
            return x
        return x.mean(dim=(2, 3))


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

"""Video encoders of the VideoResNet family: R(2+1)D-18, R3D-18 and MC3-18, with width and depth knobs.

The layer layout, parameter shapes and state-dict key names follow torchvision's
``torchvision.models.video`` (r2plus1d_18, r3d_18, mc3_18) exactly, so that at the default knobs the
parameter counts equal the published ones and torchvision weights load by name. ``width`` scales
every stage (stage i has ``width * 2**i`` channels) and ``layers`` sets the number of residual blocks
per stage (its length is the number of stages), so CPU-scale configs are the same code with smaller
numbers. ``stage_strides`` sets the stride of each stage's first block (torchvision's: 1 for the
first stage, 2 for the others; in space, and for R(2+1)D and R3D in time too, MC3's later stages
never striding in time). 1 in a later stage keeps a finer last map whose positions each see less of
the frame, for maps that have to say where (sound-source localization), at more compute. The
parameters do not change, so weights load across strides.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

# R(2+1)D's stem factorises the 3x7x7 conv through 45 channels for a 64-channel stem (Tran et al. 2018)
_R2PLUS1D_STEM_MID = 45
_REFERENCE_WIDTH = 64


def midplanes_2plus1d(in_planes: int, out_planes: int) -> int:
    """Channels between the spatial and temporal convs of a (2+1)D conv.

    Chosen so that the factorised conv has about as many parameters as a full 3x3x3 conv
    (Tran et al. 2018): ``(in * out * 3 * 3 * 3) // (in * 3 * 3 + 3 * out)``.
    """
    return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D, and the first stage of MC3)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        del midplanes  # only (2+1)D convs use it; kept for a uniform builder signature
        super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride, padding=1, bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv2Plus1D(nn.Sequential):
    """1x3x3 spatial conv, BN, ReLU, then 3x1x1 temporal conv (R(2+1)D)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                      padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                      padding=(1, 0, 0), bias=False),
        )

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv3DNoTemporal(nn.Conv3d):
    """1x3x3 convolution: no temporal extent and no temporal stride (MC3 stages after the first)."""

    def __init__(self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1) -> None:
        del midplanes
        super().__init__(in_planes, out_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                         padding=(0, 1, 1), bias=False)

    @staticmethod
    def downsample_stride(stride: int) -> tuple[int, int, int]:
        return (1, stride, stride)


ConvBuilder = Callable[..., nn.Module]


class BasicBlock3d(nn.Module):
    """Two convs with BN (ReLU after the first and after the residual sum); 1x1x1 projection shortcut."""

    def __init__(self, in_planes: int, planes: int, conv_builder: ConvBuilder, stride: int = 1) -> None:
        super().__init__()
        midplanes = midplanes_2plus1d(in_planes, planes)
        self.conv1 = nn.Sequential(
            conv_builder(in_planes, planes, midplanes, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_planes, planes, kernel_size=1, stride=conv_builder.downsample_stride(stride),
                          bias=False),
                nn.BatchNorm3d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + residual)


def basic_stem(in_channels: int, width: int) -> nn.Sequential:
    """3x7x7 conv, stride 1x2x2 (R3D, MC3)."""
    return nn.Sequential(
        nn.Conv3d(in_channels, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def r2plus1d_stem(in_channels: int, width: int) -> nn.Sequential:
    """1x7x7 spatial conv (stride 1x2x2) then 3x1x1 temporal conv, each with BN and ReLU (R(2+1)D)."""
    mid = max(1, _R2PLUS1D_STEM_MID * width // _REFERENCE_WIDTH)
    return nn.Sequential(
        nn.Conv3d(in_channels, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


# architecture name -> (stem builder, conv builder of the first stage, conv builder of later stages)
VIDEO_ARCHITECTURES: dict[str, tuple[Callable[[int, int], nn.Sequential], ConvBuilder, ConvBuilder]] = {
    "r2plus1d_18": (r2plus1d_stem, Conv2Plus1D, Conv2Plus1D),
    "r3d_18": (basic_stem, Conv3DSimple, Conv3DSimple),
    "mc3_18": (basic_stem, Conv3DSimple, Conv3DNoTemporal),
}


class VideoResNet(nn.Module):
    """A VideoResNet trunk without classifier.

    Input ``[B, C, T, H, W]`` float. ``forward`` returns ``[B, out_dim]`` after global average pooling,
    or the last stage's feature map ``[B, out_dim, T', H', W']`` with ``return_map=True``.
    For r2plus1d_18 and r3d_18 at 16x112x112 the map is 2x7x7; mc3_18 keeps T' = T. ``stage_strides``
    (one per stage; default 1, 2, 2, ...) sets how much each stage shrinks the map.
    """

    def __init__(
        self,
        arch: str = "r2plus1d_18",
        width: int = _REFERENCE_WIDTH,
        layers: Sequence[int] = (2, 2, 2, 2),
        in_channels: int = 3,
        stage_strides: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if arch not in VIDEO_ARCHITECTURES:
            raise ValueError(f"unknown video architecture {arch!r}; known: {sorted(VIDEO_ARCHITECTURES)}")
        if width < 1 or in_channels < 1 or not layers or any(n < 1 for n in layers):
            raise ValueError(f"bad VideoResNet knobs: width={width}, layers={list(layers)}, in_channels={in_channels}")
        default_strides = [1] + [2] * (len(layers) - 1)
        strides = default_strides if stage_strides is None else [int(n) for n in stage_strides]
        if len(strides) != len(layers) or any(n < 1 for n in strides):
            raise ValueError(f"bad VideoResNet knobs: stage_strides={list(strides)} needs one stride >= 1 per "
                             f"stage of layers={list(layers)}")
        stem, first_conv, later_conv = VIDEO_ARCHITECTURES[arch]
        self.config = {"name": arch, "width": int(width), "layers": [int(n) for n in layers],
                       "in_channels": int(in_channels)}
        if strides != default_strides:
            self.config["stage_strides"] = strides
        self.in_channels = in_channels
        self.stem = stem(in_channels, width)
        planes_in = width
        for stage, (num_blocks, stride) in enumerate(zip(layers, strides)):
            planes = width * 2**stage
            conv = first_conv if stage == 0 else later_conv
            blocks = [BasicBlock3d(planes_in, planes, conv, stride)]
            blocks += [BasicBlock3d(planes, planes, conv) for _ in range(1, num_blocks)]
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
            planes_in = planes
        self.num_stages = len(layers)
        self.out_dim = planes_in
        _init_weights(self)

    def forward(self, x: torch.Tensor, return_map: bool = False) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.config['name']} expects video [B, {self.in_channels}, T, H, W], got shape {list(x.shape)}"
            )
        x = self.stem(x)
        for stage in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        if return_map:
            return x
        return x.mean(dim=(2, 3, 4))


def _init_weights(module: nn.Module) -> None:
    # torchvision's initialisation, so that a fresh model matches a fresh torchvision model in distribution
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

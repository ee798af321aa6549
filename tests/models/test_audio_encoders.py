"""Audio encoders on log-mel: reference layout, output shapes, knobs, tiny forward + backward."""

from __future__ import annotations

import pytest
import torch

from avssl.models import LinearClassifier, build_audio_encoder


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_resnet18_layout_matches_torchvision_resnet18_count() -> None:
    # torchvision's resnet18 (3 input channels, 1000 classes) has 11,689,512 parameters
    encoder = build_audio_encoder("resnet18_audio", in_channels=3)
    assert count(encoder) + count(LinearClassifier(512, 1000)) == 11_689_512
    # one input channel: the stem loses 2 * 64 * 7 * 7 weights
    assert count(build_audio_encoder("resnet18_audio")) == 11_689_512 - 513_000 - 2 * 64 * 49


def ceil_div(n: int, d: int) -> int:
    return -(-n // d)


@pytest.mark.parametrize("mels,frames", [(64, 100), (128, 200), (40, 48)])
def test_resnet_map_shape(mels: int, frames: int) -> None:
    encoder = build_audio_encoder("resnet18_audio-tiny").eval()
    with torch.no_grad():
        feature_map = encoder(torch.randn(2, 1, mels, frames), return_map=True)
        pooled = encoder(torch.randn(2, 1, mels, frames))
    # stride 2 conv, stride 2 pool, three stride-2 stages (each rounds up): /32
    assert tuple(feature_map.shape) == (2, 128, ceil_div(mels, 32), ceil_div(frames, 32))
    assert tuple(pooled.shape) == (2, 128)


@pytest.mark.parametrize("mels,frames", [(64, 100), (40, 48), (16, 16)])
def test_vgg_map_shape(mels: int, frames: int) -> None:
    encoder = build_audio_encoder("vgg_audio-tiny").eval()
    with torch.no_grad():
        feature_map = encoder(torch.randn(2, 1, mels, frames), return_map=True)
    assert tuple(feature_map.shape) == (2, 128, mels // 16, frames // 16)


def test_vgg_default_size_and_knobs() -> None:
    encoder = build_audio_encoder("vgg_audio")
    assert encoder.out_dim == 512
    # convs 1,1,2,2 at 64-128-256-512: conv weights + BN affine, no conv bias
    convs = 1 * 64 * 9 + 64 * 128 * 9 + 128 * 256 * 9 + 256 * 256 * 9 + 256 * 512 * 9 + 512 * 512 * 9
    bn = 2 * (64 + 128 + 256 * 2 + 512 * 2)
    assert count(encoder) == convs + bn
    small = build_audio_encoder("vgg-audio", width=8, convs=[2, 1])
    assert small.out_dim == 16 and small(torch.randn(1, 1, 8, 8)).shape == (1, 16)


def test_vgg_refuses_input_smaller_than_its_pooling() -> None:
    with pytest.raises(ValueError, match="at least 16 mel bins"):
        build_audio_encoder("vgg_audio-tiny")(torch.randn(1, 1, 8, 100))


@pytest.mark.parametrize("name", ["resnet18_audio-tiny", "vgg_audio-tiny"])
def test_tiny_forward_backward(name: str) -> None:
    encoder = build_audio_encoder(name)
    loss = encoder(torch.randn(3, 1, 64, 100)).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())


def test_wrong_input_shape_is_named() -> None:
    with pytest.raises(ValueError, match=r"\[B, 1, n_mels, frames\]"):
        build_audio_encoder("resnet18_audio-tiny")(torch.randn(2, 64, 100))

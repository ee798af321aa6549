"""Encoder factory: names, presets, knob validation, config round trip."""

from __future__ import annotations

import pytest

from avssl.errors import UsageError
from avssl.models import build_audio_encoder, build_encoder, build_video_encoder


def test_tiny_preset_is_overridden_by_explicit_knobs() -> None:
    encoder = build_video_encoder("r2plus1d_18-tiny", width=8)
    assert encoder.config == {"name": "r2plus1d_18", "width": 8, "layers": [1, 1, 1, 1], "in_channels": 3}
    assert encoder.out_dim == 64


@pytest.mark.parametrize("name", ["r3d_18-tiny", "mc3_18", "avid_r2plus1d_18-tiny", "resnet18_audio-tiny",
                                  "vgg_audio-tiny"])
def test_config_rebuilds_the_same_architecture(name: str) -> None:
    builder = build_video_encoder if name.startswith(("r3d", "mc3", "avid")) else build_audio_encoder
    encoder = builder(name)
    rebuilt = build_encoder(encoder.config)
    assert type(rebuilt) is type(encoder) and rebuilt.config == encoder.config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in encoder.state_dict().items()}


def test_bad_names_and_knobs_are_named() -> None:
    with pytest.raises(UsageError, match="unknown video encoder 'r2plus1d_50'"):
        build_video_encoder("r2plus1d_50")
    with pytest.raises(UsageError, match="unknown audio encoder 'r3d_18'"):
        build_audio_encoder("r3d_18")
    with pytest.raises(UsageError, match="no option 'depth'"):
        build_video_encoder("r3d_18", depth=3)
    with pytest.raises(UsageError, match="'layers' must be a non-empty list"):
        build_video_encoder("r3d_18", layers=[2, 0])
    with pytest.raises(UsageError, match="'width' must be a positive integer"):
        build_audio_encoder("vgg_audio", width="64")
    with pytest.raises(UsageError, match="no option 'layers'"):
        build_audio_encoder("vgg_audio", layers=[1, 1])
    with pytest.raises(UsageError, match="'name' key"):
        build_encoder({"width": 3})

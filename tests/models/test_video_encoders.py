"""Video encoders: exact reference parameter counts, output shapes, tiny forward + backward."""

from __future__ import annotations

import pytest
import torch

from avssl.errors import UsageError
from avssl.models import LinearClassifier, build_video_encoder, midplanes_2plus1d

# torchvision's r2plus1d_18 / r3d_18 / mc3_18 with their 400-class heads
REFERENCE_PARAMETERS = {"r2plus1d_18": 31_505_325, "r3d_18": 33_371_472, "mc3_18": 11_695_440}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMETERS))
def test_parameter_count_with_400_class_head_equals_reference(name: str) -> None:
    encoder = build_video_encoder(name)
    head = LinearClassifier(encoder.out_dim, 400)
    assert encoder.out_dim == 512
    assert count(encoder) + count(head) == REFERENCE_PARAMETERS[name]


def test_midplanes_formula_matches_hand_computation() -> None:
    # 64 -> 128: 64*128*27 // (64*9 + 3*128) = 221184 // 960 = 230
    assert midplanes_2plus1d(64, 128) == 230
    assert midplanes_2plus1d(64, 64) == 144
    encoder = build_video_encoder("r2plus1d_18")
    spatial = encoder.layer2[0].conv1[0][0]
    assert tuple(spatial.weight.shape) == (230, 64, 1, 3, 3)
    assert tuple(encoder.layer2[0].conv1[0][3].weight.shape) == (128, 230, 3, 1, 1)
    # the stem factorises 3x7x7 through 45 channels, and the temporal conv of a block has stride 2
    assert tuple(encoder.stem[0].weight.shape) == (45, 3, 1, 7, 7)
    assert encoder.layer2[0].conv1[0][3].stride == (2, 1, 1)


def conv_out(n: int, kernel: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - kernel) // stride + 1


def expected_map(name: str, t: int, h: int, w: int) -> tuple[int, int, int]:
    # stem: spatial /2 (k7 p3), temporal unchanged; stages 2-4 stride 2 (MC3: spatial only)
    h, w = conv_out(h, 7, 2, 3), conv_out(w, 7, 2, 3)
    for _ in range(3):
        h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        if name != "mc3_18":
            t = conv_out(t, 3, 2, 1)
    return t, h, w


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "mc3_18"])
@pytest.mark.parametrize("thw", [(4, 32, 32), (3, 17, 40), (8, 24, 16)])
def test_feature_map_and_pooled_shapes(name: str, thw: tuple[int, int, int]) -> None:
    # the tiny preset shares the layout with the full model, so the map shapes are the same
    encoder = build_video_encoder(f"{name}-tiny").eval()
    x = torch.randn(2, 3, *thw)
    with torch.no_grad():
        feature_map = encoder(x, return_map=True)
        pooled = encoder(x)
    assert tuple(feature_map.shape) == (2, encoder.out_dim, *expected_map(name, *thw))
    assert tuple(pooled.shape) == (2, encoder.out_dim)
    torch.testing.assert_close(pooled, feature_map.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "mc3_18"])
def test_full_model_forward_on_a_tiny_input(name: str) -> None:
    encoder = build_video_encoder(name).eval()
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 4, 32, 32), return_map=True)
    assert tuple(out.shape) == (1, 512, *expected_map(name, 4, 32, 32))


def test_tiny_forward_backward_reaches_every_parameter() -> None:
    encoder = build_video_encoder("r2plus1d_18-tiny")
    assert encoder.out_dim == 128
    head = LinearClassifier(encoder.out_dim, 5)
    loss = torch.nn.functional.cross_entropy(head(encoder(torch.randn(2, 3, 8, 32, 32))), torch.tensor([0, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())


def test_width_and_depth_knobs() -> None:
    encoder = build_video_encoder("r3d_18", width=8, layers=[1, 2, 1])
    assert encoder.out_dim == 32  # 8 * 2**2 for three stages
    assert len(encoder.layer2) == 2 and not hasattr(encoder, "layer4")
    assert encoder(torch.randn(1, 3, 4, 16, 16)).shape == (1, 32)


def test_wrong_input_shape_is_named() -> None:
    encoder = build_video_encoder("mc3_18-tiny")
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\].*\[2, 4, 3, 32, 32\]"):
        encoder(torch.randn(2, 4, 3, 32, 32))


def test_stage_strides_keep_a_finer_map_with_the_same_parameters() -> None:
    default = build_video_encoder("mc3_18")
    fine = build_video_encoder("mc3_18", stage_strides=[1, 2, 2, 1])
    assert count(fine) == count(default)
    fine.load_state_dict(default.state_dict())  # the same weights load across strides
    with torch.no_grad():
        assert tuple(fine(torch.randn(1, 3, 4, 112, 112), return_map=True).shape) == (1, 512, 4, 14, 14)
    assert fine.config["stage_strides"] == [1, 2, 2, 1] and "stage_strides" not in default.config
    tiny = build_video_encoder("mc3_18-tiny", width=8, layers=[1, 1], stage_strides=[1, 2])
    with torch.no_grad():
        assert tuple(tiny(torch.randn(1, 3, 8, 32, 32), return_map=True).shape) == (1, 16, 8, 8, 8)
    # R3D strides in time too, so a stage of stride 1 keeps the frames as well
    r3d = build_video_encoder("r3d_18-tiny", stage_strides=[1, 2, 1, 1])
    with torch.no_grad():
        assert tuple(r3d(torch.randn(1, 3, 8, 32, 32), return_map=True).shape)[2:] == (4, 8, 8)


def test_bad_stage_strides_are_named() -> None:
    with pytest.raises(UsageError, match="'stage_strides' needs one stride per stage"):
        build_video_encoder("mc3_18-tiny", stage_strides=[1, 2])
    with pytest.raises(UsageError, match="stage_strides"):
        build_video_encoder("mc3_18-tiny", stage_strides=[1, 0, 2, 2])
    with pytest.raises(UsageError, match="has no option 'stage_strides'"):
        build_video_encoder("avid_r2plus1d_18", stage_strides=[1, 2, 2, 2])

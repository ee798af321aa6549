"""AMFM fusion: shapes, and that masked (missing) audio tokens never influence the output."""

from __future__ import annotations

import pytest
import torch

from avssl.models import AMFM, tokens_from_map


@pytest.fixture
def fusion() -> AMFM:
    torch.manual_seed(0)
    return AMFM(video_dim=24, audio_dim=12, dim=16, num_heads=2, num_layers=2).eval()


def inputs(batch: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 10, 24), torch.randn(batch, 6, 12)


def test_output_shapes(fusion: AMFM) -> None:
    video, audio = inputs()
    out = fusion(video, audio)
    assert out.fused.shape == (3, 16) and out.video.shape == (3, 16) and out.audio.shape == (3, 16)
    assert out.audio_present.tolist() == [True, True, True]
    assert fusion.out_dim == 16


def test_clip_without_audio_does_not_depend_on_its_audio_tokens(fusion: AMFM) -> None:
    video, audio = inputs()
    mask = torch.tensor([True, False, True])
    before = fusion(video, audio, mask)
    changed = audio.clone()
    changed[1] = torch.randn(6, 12) * 100
    after = fusion(video, changed, mask)
    assert torch.equal(before.fused, after.fused) and torch.equal(before.video, after.video)
    # even non-finite placeholders cannot leak through
    changed[1] = float("nan")
    assert torch.equal(before.fused, fusion(video, changed, mask).fused)
    assert torch.isfinite(before.fused).all()
    assert before.audio_present.tolist() == [True, False, True]
    assert torch.equal(before.audio[1], torch.zeros(16))


def test_masked_tokens_of_a_clip_with_partial_audio_are_ignored(fusion: AMFM) -> None:
    video, audio = inputs()
    token_mask = torch.ones(3, 6, dtype=torch.bool)
    token_mask[0, 4:] = False
    before = fusion(video, audio, token_mask).fused
    changed = audio.clone()
    changed[0, 4:] += 50.0
    assert torch.equal(before, fusion(video, changed, token_mask).fused)
    # a present token does change the output: the mask is what makes the difference
    changed[0, 0] += 50.0
    assert not torch.allclose(before[0], fusion(video, changed, token_mask).fused[0])


def test_missing_audio_gets_no_gradient(fusion: AMFM) -> None:
    video, audio = inputs()
    audio.requires_grad_(True)
    # a random projection: the plain sum of a LayerNorm output is constant and has no gradient
    (fusion(video, audio, torch.tensor([True, False, True])).fused * torch.randn(3, 16)).sum().backward()
    assert torch.equal(audio.grad[1], torch.zeros(6, 12))
    assert audio.grad[0].abs().sum() > 0


def test_clip_without_audio_depends_on_its_video_only(fusion: AMFM) -> None:
    # the same video with no audio gives the same fused vector whatever the rest of the batch is
    video, audio = inputs()
    mask = torch.tensor([False, True, True])
    alone = fusion(video[:1], audio[:1], mask[:1]).fused
    in_batch = fusion(video, audio, mask).fused[:1]
    torch.testing.assert_close(alone, in_batch)
    other_video = video.clone()
    other_video[0] += 1.0
    assert not torch.allclose(in_batch, fusion(other_video, audio, mask).fused[:1])


def test_bad_mask_and_token_shapes_are_named(fusion: AMFM) -> None:
    video, audio = inputs()
    with pytest.raises(ValueError, match="audio_mask must be"):
        fusion(video, audio, torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"video tokens \[B, Nv, 24\]"):
        fusion(video[..., :20], audio)
    with pytest.raises(ValueError, match="must divide by num_heads"):
        AMFM(8, 8, dim=10, num_heads=4)


def test_tokens_from_map_order() -> None:
    feature_map = torch.arange(2 * 3 * 4 * 5).float().reshape(2, 3, 4, 5)
    tokens = tokens_from_map(feature_map)
    assert tokens.shape == (2, 20, 3)
    assert torch.equal(tokens[1, 7], feature_map[1, :, 1, 2])

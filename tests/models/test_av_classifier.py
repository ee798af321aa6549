"""AVClassifier: encoders + AMFM + head; missing audio is handled by mask, not by its placeholder values."""

from __future__ import annotations

import pytest
import torch

from avssl.errors import UsageError
from avssl.models import build_av_classifier


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_av_classifier(7, {"name": "r2plus1d_18-tiny", "width": 8}, {"name": "vgg_audio-tiny", "width": 8},
                               {"dim": 32, "num_heads": 2})


def test_forward_backward_trains_every_part(model: torch.nn.Module) -> None:
    video, audio = torch.randn(3, 3, 4, 32, 32), torch.randn(3, 1, 32, 48)
    logits = model(video, audio, torch.tensor([True, True, False]))
    assert logits.shape == (3, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 6, 2])).backward()
    for part in (model.video_encoder, model.audio_encoder, model.fusion, model.head):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_placeholder_audio_of_a_silent_clip_changes_nothing(model: torch.nn.Module) -> None:
    model.eval()
    video, audio = torch.randn(3, 3, 4, 32, 32), torch.randn(3, 1, 32, 48)
    present = torch.tensor([True, False, True])
    before = model(video, audio, present)
    placeholder = audio.clone()
    placeholder[1] = torch.randn(1, 32, 48) * 10
    assert torch.equal(before, model(video, placeholder, present))
    # a batch with no audio at all, with or without a spectrogram tensor
    none_present = torch.zeros(3, dtype=torch.bool)
    torch.testing.assert_close(model(video, audio, none_present), model(video, None))


def test_training_mode_batch_norm_never_sees_missing_audio(model: torch.nn.Module) -> None:
    # the audio encoder runs on the clips with audio only, so its running statistics ignore placeholders
    video, audio = torch.randn(4, 3, 4, 32, 32), torch.randn(4, 1, 32, 48)
    present = torch.tensor([True, False, True, False])
    placeholder = audio.clone()
    placeholder[~present] = 1e4
    model(video, placeholder, present)
    stats = model.audio_encoder.features[1].running_mean.clone()
    model.audio_encoder.features[1].reset_running_stats()
    model(video, audio, present)
    torch.testing.assert_close(stats, model.audio_encoder.features[1].running_mean)


def test_forward_features_exposes_streams_for_alignment(model: torch.nn.Module) -> None:
    out = model.forward_features(torch.randn(2, 3, 4, 32, 32), torch.randn(2, 1, 32, 48))
    assert out.fused.shape == out.video.shape == out.audio.shape == (2, 32)


def test_bad_config_is_named() -> None:
    with pytest.raises(UsageError, match="fusion has no option 'heads'"):
        build_av_classifier(3, {"name": "r3d_18-tiny"}, {"name": "vgg_audio-tiny"}, {"heads": 2})
    with pytest.raises(UsageError, match="'audio' must be a mapping"):
        build_av_classifier(3, {"name": "r3d_18-tiny"}, {"width": 3})

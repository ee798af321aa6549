"""Video and audio augmentations: per-clip consistency, hand-computed values, seed reproducibility."""

import pytest
import torch

from avssl.config.data import AudioAugmentConfig, VideoAugmentConfig
from avssl.config.typed import from_dict
from avssl.data import transforms as T
from avssl.errors import UsageError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp_clips(batch: int = 3, frames: int = 4, height: int = 24, width: int = 32) -> torch.Tensor:
    """uint8 [B, 3, T, H, W]: pixel = (x + 2y + 5t + 40c) % 256, so crops and flips are traceable."""
    c = torch.arange(3).view(1, 3, 1, 1, 1)
    t = torch.arange(frames).view(1, 1, frames, 1, 1)
    y = torch.arange(height).view(1, 1, 1, height, 1)
    x = torch.arange(width).view(1, 1, 1, 1, width)
    clip = (x + 2 * y + 5 * t + 40 * c) % 256
    return clip.expand(batch, 3, frames, height, width).to(torch.uint8).clone()


def test_channels_first_and_to_float():
    frames = torch.randint(0, 256, (4, 6, 8, 3), dtype=torch.uint8)
    clip = T.to_channels_first(frames)
    assert clip.shape == (3, 4, 6, 8) and clip[2, 1, 5, 7] == frames[1, 5, 7, 2]
    assert torch.equal(T.to_float(clip), clip.float() / 255)
    with pytest.raises(ValueError):
        T.to_channels_first(torch.zeros(4, 6, 8, 1))


def test_crop_boxes_within_bounds_and_scale_range():
    boxes = T.sample_crop_boxes(2000, 60, 80, (0.2, 0.5), (3 / 4, 4 / 3), generator=_gen())
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 60).all() and (left + w <= 80).all()
    area = (h * w).double() / (60 * 80)
    assert area.min() > 0.18 and area.max() < 0.52  # rounding of h, w moves the area slightly
    assert area.mean().item() == pytest.approx(0.35, abs=0.02)
    assert ((w.double() / h) >= 0.7).all() and ((w.double() / h) <= 1.4).all()
    # Impossible aspect ratio -> deterministic centre fallback with the aspect clamped.
    fallback = T.sample_crop_boxes(3, 10, 100, (0.9, 1.0), (1.0, 1.0), generator=_gen())
    assert fallback.tolist() == [[0, 45, 10, 10]] * 3


def test_same_seed_same_augmentation_different_seed_differs():
    clips = T.to_float(_ramp_clips())

    def pipeline(seed):
        g = _gen(seed)
        x = T.color_jitter(clips, p=1.0, generator=g)
        return T.random_grayscale(x, generator=g)

    assert torch.equal(pipeline(7), pipeline(7))
    assert not torch.equal(pipeline(7), pipeline(8))


def test_color_jitter_hand_values():
    clip = torch.full((3, 2, 2, 2), 0.5)
    clip[0] = 0.2  # a non-gray colour
    # Zero strengths pin every factor to 1 and the hue shift to 0: the identity.
    same = T.color_jitter(clip, brightness=0, contrast=0, saturation=0, hue=0, p=1.0, generator=_gen())
    torch.testing.assert_close(same, clip)
    # p = 0: never applied.
    assert torch.equal(T.color_jitter(clip, p=0.0, generator=_gen()), clip)
    # Hue rotation keeps luma and leaves gray pixels unchanged.
    luma = torch.tensor(T._LUMA).view(3, 1, 1, 1)
    hued = T.color_jitter(clip, brightness=0, contrast=0, saturation=0, hue=0.5, p=1.0, generator=_gen(2))
    assert not torch.allclose(hued, clip)
    torch.testing.assert_close((hued * luma).sum(0), (clip * luma).sum(0), atol=2e-3, rtol=0)
    gray = torch.full((3, 2, 2, 2), 0.4)
    torch.testing.assert_close(
        T.color_jitter(gray, brightness=0, contrast=0, saturation=0.9, hue=0.5, p=1.0, generator=_gen()),
        gray, atol=1e-4, rtol=0,  # luma weights sum to 0.9999, as torchvision's
    )


def test_contrast_blends_with_clip_mean_luma():
    clip = torch.rand(3, 3, 4, 4, generator=_gen(5))
    g = _gen(9)
    out = T.color_jitter(clip, brightness=0, contrast=0.5, saturation=0, hue=0, p=1.0, generator=g)
    # Recover the factor from one pixel and check every pixel of every frame used it.
    mean_luma = (clip * torch.tensor(T._LUMA).view(3, 1, 1, 1)).sum(0).mean()
    factor = (out - mean_luma) / (clip - mean_luma)
    assert 0.5 <= factor.mean() <= 1.5
    torch.testing.assert_close(factor, torch.full_like(factor, factor.mean().item()), atol=1e-4, rtol=0)


def test_grayscale_and_normalize():
    clips = T.to_float(_ramp_clips(batch=40))
    out = T.random_grayscale(clips, p=0.5, generator=_gen())
    gray = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert 5 < gray.sum() < 35
    expected = (clips[gray] * torch.tensor(T._LUMA).view(1, 3, 1, 1, 1)).sum(1)
    torch.testing.assert_close(out[gray][:, 0], expected)
    assert torch.equal(out[~gray], clips[~gray])
    u8 = _ramp_clips(1)[0]
    norm = T.normalize(u8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    torch.testing.assert_close(norm[1, 2, 3, 4], (u8[1, 2, 3, 4].float() / 255 - 0.5) / 0.5)
    torch.testing.assert_close(norm, T.normalize(T.to_float(u8), (0.5,) * 3, (0.25, 0.5, 1.0)))


def test_center_crop_and_resize_short_side():
    clip = _ramp_clips(1)[0]
    assert torch.equal(T.center_crop(clip, (10, 11)), clip[..., 7:17, 10:21])
    resized = T.resize_short_side(clip, 12)
    assert resized.shape == (3, 4, 12, 16)
    with pytest.raises(ValueError, match="larger"):
        T.center_crop(clip, (30, 30))


def test_random_gain_range_and_fixed_value():
    wave = torch.randn(50, 100, generator=_gen())
    fixed = T.random_gain(wave, 6.0, 6.0, generator=_gen())
    torch.testing.assert_close(fixed, wave * 10 ** (6 / 20))
    out = T.random_gain(wave, -6.0, 3.0, generator=_gen(1))
    ratio_db = 20 * torch.log10(out.abs() / wave.abs())
    assert (ratio_db.std(dim=1) < 1e-3).all()  # one gain per example
    assert ratio_db.min() >= -6.0 - 1e-4 and ratio_db.max() <= 3.0 + 1e-4
    assert T.random_gain(wave[0], generator=_gen()).shape == (100,)


def test_spec_augment_masks_bands_with_example_mean():
    log_mel = torch.arange(2 * 16 * 50, dtype=torch.float32).view(2, 1, 16, 50)
    out = T.spec_augment(log_mel, 1, 4, 1, 10, generator=_gen(4))
    for b in range(2):
        changed = out[b, 0] != log_mel[b, 0]
        rows = changed.all(dim=1)  # masked mel bins span every frame
        cols = changed.all(dim=0)
        assert rows.sum() <= 4 and cols.sum() <= 10
        # every changed cell lies in a masked row or column, and holds the example mean
        assert torch.equal(changed, rows.view(-1, 1) | cols.view(1, -1))
        assert torch.all(out[b, 0][changed] == log_mel[b].mean())
        # bands are contiguous
        for band in (rows, cols):
            idx = band.nonzero().flatten()
            if len(idx):
                assert idx[-1] - idx[0] + 1 == len(idx)
    total = T.spec_augment(log_mel, 2, 16, 0, 0, fill=-80.0, generator=_gen(1))
    assert ((total == -80.0) | (total == log_mel)).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="clip"):
        T.random_grayscale(torch.zeros(3, 4, 5), generator=_gen())
    with pytest.raises(ValueError, match="hue"):
        T.color_jitter(torch.zeros(3, 1, 2, 2), hue=0.7, generator=_gen())
    with pytest.raises(ValueError, match="log_mel"):
        T.spec_augment(torch.zeros(16, 50), generator=_gen())


def test_brightness_scales_every_pixel_by_one_factor():
    clip = torch.rand(3, 4, 5, 5, generator=_gen(2)) * 0.5
    out = T.color_jitter(clip, brightness=0.4, contrast=0, saturation=0, hue=0, p=1.0, generator=_gen(3))
    factor = out / clip
    assert 0.6 <= factor.mean() <= 1.4
    torch.testing.assert_close(factor, torch.full_like(factor, factor.mean().item()), atol=1e-4, rtol=0)


def test_augment_configs_validate_and_drive_spec_augment():
    audio_cfg = from_dict(AudioAugmentConfig, {"gain_db": [-3, 3], "max_time_width": 5}, "data.audio_augment")
    log_mel = torch.randn(2, 1, 8, 30, generator=_gen(4))
    masked = T.augment_log_mel(log_mel, audio_cfg, generator=_gen())
    assert masked.shape == (2, 1, 8, 30) and torch.equal(masked, T.augment_log_mel(log_mel, audio_cfg, generator=_gen()))
    with pytest.raises(UsageError, match="data.video_augment.crop"):
        from_dict(VideoAugmentConfig, {"crop": 0.5}, "data.video_augment")
    with pytest.raises(UsageError, match="video_augment.flip_p"):
        VideoAugmentConfig(flip_p=2.0)
    with pytest.raises(UsageError, match="audio_augment.gain_db"):
        AudioAugmentConfig(gain_db=(3.0, -3.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_for_same_seed():
    clips = _ramp_clips()

    def run(x):
        g = _gen(11)
        x = T.color_jitter(T.normalize(x, (0, 0, 0), (1, 1, 1)), p=1.0, generator=g)
        return T.random_grayscale(x, generator=g)

    torch.testing.assert_close(run(clips.cuda()).cpu(), run(clips), atol=1e-3, rtol=0)

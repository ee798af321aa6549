"""Fingerprinting query transforms on decoded tensors, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from avssl.evaluate.query_transforms import (
    AVClip,
    audio_noise,
    audio_resample,
    blur,
    brightness,
    crop,
    reencode,
    resize,
    speed,
)

RATE = 16000


def _tone(freq, seconds=1.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return torch.from_numpy((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))


def _peak_hz(audio):
    spectrum = np.abs(np.fft.rfft(audio.numpy()))
    return np.fft.rfftfreq(len(audio), 1 / RATE)[spectrum.argmax()]


def _video(t=8, h=32, w=48, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (t, h, w, 3)).astype(np.uint8))


def test_brightness_adds_a_clipped_offset():
    video = torch.tensor([0, 100, 200, 250], dtype=torch.uint8).view(1, 1, 4, 1).expand(1, 1, 4, 3)
    out = brightness(AVClip(video, None), np.random.default_rng(0), delta=0.2).video  # + 51
    assert out[0, 0, :, 0].tolist() == [51, 151, 251, 255]


def test_crop_takes_a_window_and_zooms_it_back():
    xs = torch.arange(48, dtype=torch.uint8).view(1, 1, 48, 1).expand(2, 32, 48, 3).contiguous()  # value = column
    out = crop(AVClip(xs, None), np.random.default_rng(5), fraction=0.5).video
    rng = np.random.default_rng(5)
    rng.integers(0, 32 - 16 + 1)
    left = int(rng.integers(0, 48 - 24 + 1))
    assert out.shape == xs.shape
    assert left <= int(out.min()) and int(out.max()) <= left + 23
    assert int(out.max()) - int(out.min()) >= 20  # the window spans the whole output width


def test_resize_removes_fine_detail_but_keeps_flat_areas():
    checker = ((np.indices((32, 48)).sum(axis=0) % 2) * 255).astype(np.uint8)
    video = torch.from_numpy(np.repeat(checker[None, :, :, None], 3, axis=3))
    out = resize(AVClip(video, None), np.random.default_rng(0), scale=0.25).video
    assert out.shape == video.shape
    assert abs(float(out.float().mean()) - 127.5) < 3 and float(out.float().std()) < 10
    flat = torch.full((2, 32, 48, 3), 90, dtype=torch.uint8)
    assert torch.equal(resize(AVClip(flat, None), np.random.default_rng(0)).video, flat)


def test_blur_matches_scipy_gaussian_filter():
    video = _video(t=2)
    out = blur(AVClip(video, None), np.random.default_rng(0), sigma=1.5).video.numpy().astype(int)
    ref = gaussian_filter(video.numpy().astype(np.float64), sigma=(0, 1.5, 1.5, 0), mode="mirror", truncate=3.0)
    assert np.abs(out - np.round(ref)).max() <= 1


def test_speed_picks_frames_and_shortens_audio():
    video = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 2, 2, 3)
    out = speed(AVClip(video, _tone(1000)), np.random.default_rng(0), factor=1.5)
    assert out.video[:, 0, 0, 0].tolist() == [0, 1, 3, 4, 6]
    assert len(out.audio) == round(RATE / 1.5)
    assert _peak_hz(out.audio) == pytest.approx(1500, abs=3)  # played faster, at the same sample rate


def test_audio_noise_hits_the_requested_snr():
    clean = _tone(440)
    noisy = audio_noise(AVClip(None, clean), np.random.default_rng(0), snr_db=10.0).audio
    noise = (noisy - clean).numpy().astype(np.float64)
    snr = 10 * np.log10(np.mean(clean.numpy().astype(np.float64) ** 2) / np.mean(noise ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)


def test_audio_resample_keeps_low_band_and_removes_high_band():
    low, high = _tone(1000), _tone(6000)
    kept = audio_resample(AVClip(None, low), np.random.default_rng(0), rate=8000).audio
    gone = audio_resample(AVClip(None, high), np.random.default_rng(0), rate=8000).audio
    assert len(kept) == len(low)
    assert np.corrcoef(kept.numpy()[200:-200], low.numpy()[200:-200])[0, 1] > 0.99
    assert float((gone[200:-200] ** 2).mean()) < 0.01 * float((high ** 2).mean())


def test_reencode_round_trips_through_a_real_mp4_and_loses_more_at_low_bitrate(tmp_path):
    y, x = np.mgrid[0:64, 0:64]
    frames = np.stack([np.stack([(x * 4 + 8 * t) % 256, (y * 4) % 256, ((x + y) * 2) % 256], axis=-1)
                       for t in range(12)]).astype(np.uint8)
    clip = AVClip(torch.from_numpy(frames), _tone(440, 0.5), fps=24.0, sample_rate=RATE)
    errors = []
    for bitrate in (20_000, 2_000_000):
        out = reencode(clip, np.random.default_rng(0), video_bitrate=bitrate, workdir=str(tmp_path))
        assert out.video.shape == clip.video.shape and len(out.audio) == len(clip.audio)
        errors.append(float((out.video.float() - clip.video.float()).abs().mean()))
    assert errors[0] > errors[1] and errors[1] < 10

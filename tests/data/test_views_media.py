"""Views and clip windows on real encoded media: labels checked against decoded frame numbers and beeps."""

import numpy as np
import pytest
import torch

from avssl.data.sampling import ClipSampler, WindowSpec
from avssl.data.synthetic.framecode import (
    beep_track,
    coded_frames,
    decode_frame_index,
    detect_onsets,
)
from avssl.data.views import (
    AUDIO_AFTER,
    AUDIO_BEFORE,
    audio_at_speed,
    inter_modal_order_view,
    order_classes,
    order_view,
)
from avssl.media import read_audio, read_video
from avssl.media.writer import write_media

FPS, RATE, DURATION = 25, 16000, 8.0
BEEP_HZ, BEEP_LEN = 500.0, 0.16
ONSETS = np.arange(0.1, DURATION - 0.2, 0.37)  # not a multiple of the frame period


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    path = tmp_path_factory.mktemp("views") / "coded.mp4"
    frames = coded_frames(int(DURATION * FPS), 64, 64)
    audio = beep_track(ONSETS, DURATION, RATE, freq=BEEP_HZ, beep_length=BEEP_LEN)
    write_media(path, frames, FPS, audio, RATE, gop=25)
    return str(path)


def indices(frames: torch.Tensor) -> list[int]:
    return [decode_frame_index(f.numpy()) for f in frames]


def test_speed_on_decoded_frames_and_audio(movie):
    sampler = ClipSampler(np.array([DURATION]), WindowSpec(4 * 0.64, fps=FPS), seed=3)
    start = sampler.sync_pair(0, 0).video_start
    clip = read_video(movie, start, 4 * 0.64, fps=FPS / 4)  # the frame grid of a 4x clip
    first = round(start * FPS)
    assert indices(clip) == [first + 4 * j for j in range(16)]
    # audio: beeps at file time t appear at (t - start) / 4 s, four times higher
    wave = read_audio(movie, start, 4 * 0.64, RATE)
    fast = audio_at_speed(wave, 4, round(0.64 * RATE))
    found = detect_onsets(fast.numpy(), RATE, freq=4 * BEEP_HZ, min_gap=0.05)
    inside = ONSETS[(ONSETS >= start) & (ONSETS + BEEP_LEN <= start + 4 * 0.64)]
    assert len(inside) >= 1
    np.testing.assert_allclose(found[: len(inside)], (inside - start) / 4, atol=1.5 / RATE * 4)


def test_order_on_decoded_frames(movie):
    frames = read_video(movie, 2.0, 1.2)
    assert indices(frames) == list(range(50, 80))
    parts, order = order_view(frames, np.random.default_rng(4), 3)
    perm = order_classes(3)[order]
    for j in range(3):
        assert indices(parts[j]) == list(range(50 + 10 * perm[j], 60 + 10 * perm[j]))


def test_inter_modal_order_on_decoded_media(movie):
    spec = WindowSpec(0.64, 1.0, fps=FPS)
    labels = set()
    for seed in range(9):
        pair, label = inter_modal_order_view(spec, DURATION, np.random.default_rng(seed),
                                             min_offset=0.5, max_offset=1.5)
        video = read_video(movie, pair.video_start, spec.video_duration)
        video_time = indices(video)[0] / FPS
        audio = read_audio(movie, pair.audio_start, spec.audio_duration, RATE)
        found = detect_onsets(audio.numpy(), RATE, freq=BEEP_HZ, min_gap=0.1)
        # the first beep starting inside the window shows where the window starts in the file (a
        # beep cut by the window's start shows up as an onset at ~0 and is skipped)
        inside = ONSETS[(ONSETS > pair.audio_start + 0.005) & (ONSETS < pair.audio_start + 0.8)]
        audio_time = inside[0] - found[found > 0.005][0]
        shift = audio_time - video_time
        assert abs(audio_time - pair.audio_start) < 2 / RATE
        if label == AUDIO_BEFORE:
            assert shift <= -0.5 + 1e-3
        elif label == AUDIO_AFTER:
            assert shift >= 0.5 - 1e-3
        else:
            assert abs(shift) < 1e-3
        labels.add(label)
    assert labels == {0, 1, 2}


def test_audio_speed_matches_the_decoders_resampler(tmp_path):
    # reading s * d seconds at rate / s and playing it at rate is the same speed-up
    t = np.arange(int(4 * RATE)) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1300 * t)).astype(np.float32)
    path = write_media(tmp_path / "tone.wav", audio=tone, sample_rate=RATE)
    ours = audio_at_speed(read_audio(path, 1.0, 4 * 0.5, RATE), 4, RATE // 2)
    decoder = read_audio(path, 1.0, 4 * 0.5, RATE // 4)
    assert ours.shape == decoder.shape == (RATE // 2,)
    torch.testing.assert_close(ours[64:-64], decoder[64:-64], rtol=0, atol=2e-3)

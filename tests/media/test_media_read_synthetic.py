"""read_video / read_audio / read_clip against files whose frames and beeps are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from media_cases import AUDIO_ONLY_FORMATS, FPS, NUM_FRAMES, ONSETS, VIDEO_FORMATS

from avssl.data.synthetic.framecode import decode_frame_index, detect_onsets
from avssl.media import MediaReader, probe, read_audio, read_clip, read_video

WINDOWS = [(0.0, 0.5), (0.7, 1.0), (1.93, 0.6), (2.9, 1.0)]


def codes(video) -> list[int]:
    return [decode_frame_index(f.numpy()) for f in video]


@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_read_video_returns_exactly_the_frames_in_the_window(coded_media, fmt):
    with MediaReader(coded_media[fmt]) as reader:
        for start, duration in WINDOWS:
            video, info = reader.read_video(start, duration, return_info=True)
            first = math.ceil(start * FPS - 1e-9)
            last = min(NUM_FRAMES, math.ceil((start + duration) * FPS - 1e-9))
            assert codes(video) == list(range(first, last)), (fmt, start)
            assert video.dtype == torch.uint8
            assert tuple(video.shape[1:]) == (96, 128, 3)
            np.testing.assert_allclose(info.frame_times.numpy(), np.arange(first, last) / FPS, atol=1e-3)


@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_fps_resampling_picks_the_frame_shown_at_each_grid_time(coded_media, fmt):
    start, duration, fps = 0.53, 1.0, 8
    video = read_video(coded_media[fmt], start, duration, fps=fps)
    grid = start + np.arange(8) / fps
    assert codes(video) == [int(math.floor(t * FPS + 1e-9)) for t in grid]
    # upsampling repeats frames: 50 fps shows each 25 fps frame twice
    video = read_video(coded_media[fmt], 1.0, 0.2, fps=50)
    assert codes(video) == [25, 25, 26, 26, 27, 27, 28, 28, 29, 29]


def test_size_short_side_and_exact(coded_media):
    path = coded_media["mp4"]
    small = read_video(path, 1.0, 0.2, size=48)
    assert tuple(small.shape) == (5, 48, 64, 3)
    assert codes(small) == [25, 26, 27, 28, 29]
    exact = read_video(path, 1.0, 0.2, size=(40, 100))
    assert tuple(exact.shape) == (5, 40, 100, 3)
    assert codes(exact) == [25, 26, 27, 28, 29]


@pytest.mark.parametrize("fmt", VIDEO_FORMATS + AUDIO_ONLY_FORMATS)
def test_read_audio_is_sample_exact(coded_media, fmt):
    with MediaReader(coded_media[fmt]) as reader:
        for start, duration in WINDOWS:
            audio, info = reader.read_audio(start, duration, return_info=True)
            assert audio.dtype == torch.float32 and audio.shape == (round(duration * 16000),)
            found = detect_onsets(audio.numpy(), 16000) + start
            expected = ONSETS[(ONSETS >= start) & (ONSETS < start + duration - 0.02)]
            assert len(found) == len(expected), (fmt, start, found, expected)
            # within one sample at 16 kHz (codec priming, pre-skip and rounded timestamps handled)
            np.testing.assert_allclose(found, expected, atol=1.0 / 16000)


@pytest.mark.parametrize("fmt", VIDEO_FORMATS)
def test_audio_and_video_agree_within_a_frame(coded_media, fmt):
    """Each beep heard in a clip is at the time of the frame that shows the beep's frame index."""
    clip = read_clip(coded_media[fmt], 0.9, 1.5)
    onsets = detect_onsets(clip.audio.numpy(), 16000) + clip.start
    times = clip.video_info.frame_times.numpy()
    shown = codes(clip.video)
    assert len(onsets) == 3  # 0.9371, 1.5052, 2.2217
    for t in onsets:
        index = int(np.searchsorted(times, t, side="right")) - 1
        assert abs(shown[index] - t * FPS) <= 1.0


def test_many_windows_from_one_open_file_match_single_reads(coded_media):
    path = coded_media["mp4"]
    with MediaReader(path) as reader:
        a = [reader.read_audio(s, 0.5) for s in (2.5, 0.4, 3.1)]
        v = [reader.read_video(s, 0.5) for s in (2.5, 0.4, 3.1)]
    for s, aa, vv in zip((2.5, 0.4, 3.1), a, v):
        assert bool((read_audio(path, s, 0.5) == aa).all())
        assert bool((read_video(path, s, 0.5) == vv).all())


def test_audio_past_the_end_is_zero_padded_and_reported(coded_media):
    audio, info = read_audio(coded_media["wav"], 3.5, 1.0, return_info=True)
    assert audio.shape == (16000,)
    assert info.padded_before == 0 and abs(info.padded_after - 8000) <= 1
    assert float(audio[-info.padded_after:].abs().max()) == 0.0
    assert float(audio[:8000].abs().max()) > 0.1  # the beep at 3.6113 s is there


def test_fps_grid_past_the_last_frame_is_counted(coded_media):
    video, info = read_video(coded_media["mp4"], 3.8, 0.4, fps=25, return_info=True)
    assert len(video) == 10 and info.padded_frames == 5
    assert codes(video) == [95, 96, 97, 98, 99, 99, 99, 99, 99, 99]


@pytest.mark.parametrize("fmt", VIDEO_FORMATS + AUDIO_ONLY_FORMATS)
def test_probe_describes_the_written_file(coded_media, fmt):
    info = probe(coded_media[fmt])
    assert info.has_audio
    assert info.audio_sample_rate == (48000 if fmt in ("webm", "ogg") else 44100)
    assert abs(info.duration - NUM_FRAMES / FPS) < 0.05
    assert info.has_video == (fmt in VIDEO_FORMATS)
    if info.has_video:
        assert (info.width, info.height) == (128, 96) and abs(info.video_fps - FPS) < 0.01

"""Files that break naive readers: variable frame rate, odd sizes, rotation, audio shorter than video,
and frames written from a generator."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

from avssl.data.synthetic.framecode import (
    beep_track,
    coded_frames,
    decode_frame_index,
    detect_onsets,
)
from avssl.media import MediaReader, probe, read_audio, read_clip, read_video
from avssl.media.writer import write_media


def codes(video) -> list[int]:
    return [decode_frame_index(f.numpy()) for f in video]


# irregular gaps from 10 ms to 150 ms: a phone's variable frame rate, exact in 90 kHz ticks
VFR_TIMES = np.round(np.cumsum(np.r_[0.0, np.random.default_rng(3).uniform(0.01, 0.15, 39)]) * 90000) / 90000


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
def test_variable_frame_rate_keeps_exact_times(tmp_path, fmt):
    path = write_media(tmp_path / f"vfr.{fmt}", coded_frames(40, 64, 96), 25, frame_times=VFR_TIMES, gop=8)
    with MediaReader(path) as reader:
        for start, duration in ((0.0, 0.5), (1.03, 0.71), (2.2, 1.0)):
            video, info = reader.read_video(start, duration, return_info=True)
            inside = np.flatnonzero((VFR_TIMES >= start) & (VFR_TIMES < start + duration))
            assert codes(video) == inside.tolist(), (start, duration)
            np.testing.assert_allclose(info.frame_times.numpy(), VFR_TIMES[inside], atol=1e-6)
        # on a grid, each time gets the frame on screen then: the last one shown at or before it
        grid = 0.9 + np.arange(10) / 10
        shown = np.searchsorted(VFR_TIMES, grid + 1e-9, side="right") - 1
        assert codes(reader.read_video(0.9, 1.0, fps=10)) == shown.tolist()


@pytest.mark.parametrize("fmt", ["avi", "webm"])
def test_odd_sizes_where_the_codec_allows_them(tmp_path, fmt):
    path = write_media(tmp_path / f"odd.{fmt}", coded_frames(25, 61, 97), 25)
    info = probe(path)
    assert (info.width, info.height) == (97, 61)
    video = read_video(path, 0.4, 0.2)
    assert tuple(video.shape) == (5, 61, 97, 3) and codes(video) == [10, 11, 12, 13, 14]
    small = read_video(path, 0.4, 0.2, size=48)  # short side 48, long side round(97 * 48 / 61) = 76
    assert tuple(small.shape) == (5, 48, 76, 3) and codes(small) == [10, 11, 12, 13, 14]


def test_odd_size_h264_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"odd\.mp4.*even width and height.*97x61"):
        write_media(tmp_path / "odd.mp4", coded_frames(3, 61, 97), 25)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_turns_frames_as_a_player_does(tmp_path, rotation):
    path = write_media(tmp_path / f"rot{rotation}.mp4", coded_frames(10, 64, 96), 25, rotation=rotation)
    info = probe(path)
    upright = rotation % 180 == 0
    assert info.rotation == rotation and (info.width, info.height) == ((96, 64) if upright else (64, 96))
    with MediaReader(path) as reader:
        video = reader.read_video(0.0, 0.2)
        assert reader.info.rotation == rotation and reader.info.width == info.width
        assert tuple(video.shape[1:3]) == (info.height, info.width)
        # turning back by the stated angle (clockwise) gives the stored frame with its code
        assert [decode_frame_index(np.rot90(f.numpy(), -rotation // 90)) for f in video] == [0, 1, 2, 3, 4]
        small = reader.read_video(0.0, 0.2, size=32)
        assert tuple(small.shape[1:3]) == ((32, 48) if upright else (48, 32))
    if shutil.which("ffmpeg"):  # the ffmpeg command line (auto-rotating) shows the same picture
        shown = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                                "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        assert np.array_equal(np.frombuffer(shown, np.uint8).reshape(video.shape[1:]), video[0].numpy())


def test_audio_shorter_than_video_is_padded_and_reported(tmp_path):
    rate = 16000
    audio = beep_track([0.3, 0.8], 1.0, rate)  # 1 s of audio under 2 s of video
    path = write_media(tmp_path / "short_audio.mp4", coded_frames(50, 64, 96), 25, audio, rate)
    info = probe(path)
    assert abs(info.audio_duration - 1.0) < 0.05 and abs(info.video_duration - 2.0) < 0.05
    samples, ainfo = read_audio(path, 0.5, 1.0, return_info=True)
    assert samples.shape == (16000,)
    assert abs(ainfo.padded_after - 8000) <= 1100 and ainfo.padded_before == 0  # AAC's last frame may run on
    assert float(samples[-ainfo.padded_after:].abs().max()) == 0.0
    np.testing.assert_allclose(detect_onsets(samples.numpy(), rate) + 0.5, [0.8], atol=1.0 / rate)
    clip = read_clip(path, 1.5, 0.4)  # video only past the audio: frames, and audio all padding
    assert codes(clip.video) == list(range(38, 48))
    assert clip.audio_info.padded_after == 6400 and float(clip.audio.abs().max()) == 0.0


def test_frames_from_a_generator_with_explicit_count(tmp_path):
    frames = (coded_frames(1, 48, 64, first=i)[0] for i in range(30))
    path = write_media(tmp_path / "gen.mp4", frames, 25, num_frames=30, frame_size=(48, 64))
    assert codes(read_video(path, 0.0, 1.2)) == list(range(30))
    with pytest.raises(ValueError, match=r"bad_count\.mp4.*num_frames=31.*yielded 30"):
        write_media(tmp_path / "bad_count.mp4", iter(coded_frames(30, 48, 64)), 25, num_frames=31)
    with pytest.raises(ValueError, match=r"bad_size\.mp4.*frame 0"):
        write_media(tmp_path / "bad_size.mp4", iter(coded_frames(3, 48, 64)), 25, frame_size=(50, 64))


def test_a_window_at_the_stream_start_reads_the_same_after_another_read(tmp_path):
    """A seek back to the stream start flushes the AAC decoder, which then gave the first frame's
    samples up to 0.04 off a fresh decode: reads that reach the start decode it afresh."""
    path = tmp_path / "aac.mp4"
    t = np.arange(5 * 16000) / 16000
    write_media(path, np.zeros((125, 32, 32, 3), dtype=np.uint8), 25,
                (0.3 * np.sin(2 * np.pi * (300 + 150 * t) * t)).astype(np.float32), 16000)
    with MediaReader(path) as fresh:
        first = fresh.read_audio(0.0, 1.0)
    with MediaReader(path) as reader:
        reader.read_audio(1.5, 1.0)
        reader.read_video(1.5, 1.0)
        again = reader.read_audio(0.0, 1.0)
        near = reader.read_audio(0.1, 0.5)
    torch.testing.assert_close(again, first, atol=1e-6, rtol=0)
    torch.testing.assert_close(near, first[1600:9600], atol=1e-6, rtol=0)

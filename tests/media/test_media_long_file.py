"""A window deep inside a 30-minute file is found by seeking, not by decoding from the start."""

from __future__ import annotations

import numpy as np
import pytest

from avssl.data.synthetic.framecode import (
    beep_track,
    decode_frame_index,
    detect_onsets,
    encode_frame_index,
)
from avssl.media import MediaReader
from avssl.media.writer import write_media

FPS, GOP, MINUTES, RATE = 5, 5, 30, 8000  # a keyframe every second; tiny frames keep writing fast


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """30 min, 64x48: frame i shows i % 4096; a beep at 0.5 s into every second. Written from
    generators (the frames and samples never sit in memory at once)."""
    seconds = MINUTES * 60
    frames = (encode_frame_index(i % 4096, 48, 64) for i in range(seconds * FPS))
    second = beep_track([0.5], 1.0, RATE)
    audio = (second for _ in range(seconds))
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return write_media(path, frames, FPS, audio, RATE, gop=GOP, num_frames=seconds * FPS, frame_size=(48, 64))


def test_window_at_1700_s_decodes_only_a_few_seconds(long_file):
    with MediaReader(long_file) as reader:
        assert abs(reader.info.duration - MINUTES * 60) < 0.5
        video = reader.read_video(1700.0, 1.0)
        decoded = reader.decoded_video_frames
        assert [decode_frame_index(f.numpy()) for f in video] == [(1700 * FPS + k) % 4096 for k in range(FPS)]
        # the keyframe at 1700 s starts the window: one second of frames plus the decoder's
        # reordering delay, not the 8500 before it
        assert decoded <= 3 * FPS, decoded
        audio = reader.read_audio(1700.2, 1.0, sample_rate=16000)
        np.testing.assert_allclose(detect_onsets(audio.numpy(), 16000) + 1700.2, [1700.5], atol=1.0 / 16000)
        # 1.3 s of 1024-sample AAC frames (the window, its pre-roll and filter margin) is ~11
        assert reader.decoded_audio_frames <= 20, reader.decoded_audio_frames
        before = reader.decoded_video_frames
        reader.read_video(1234.5, 1.0, fps=4)  # mid-GOP: from the keyframe at 1234 s
        assert reader.decoded_video_frames - before <= 3 * FPS

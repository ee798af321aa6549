"""Shared media fixtures: small files with frame indices in the pixels and beeps at known onsets."""

from __future__ import annotations

import pytest
from media_cases import (
    AUDIO_ONLY_FORMATS,
    FPS,
    NUM_FRAMES,
    ONSETS,
    VIDEO_FORMATS,
    native_rate,
)

from avssl.data.synthetic.framecode import beep_track, coded_frames
from avssl.media.writer import write_media


@pytest.fixture(scope="session")
def coded_media(tmp_path_factory):
    """fmt -> path of a 4 s file: frame i shows code i at i / 25 s; beeps start at ONSETS."""
    root = tmp_path_factory.mktemp("coded_media")
    paths = {}
    for fmt in VIDEO_FORMATS + AUDIO_ONLY_FORMATS:
        rate = native_rate(fmt)
        audio = beep_track(ONSETS, NUM_FRAMES / FPS, rate)
        frames = coded_frames(NUM_FRAMES, 96, 128) if fmt in VIDEO_FORMATS else None
        paths[fmt] = write_media(root / f"coded.{fmt}", frames, FPS, audio, rate, gop=12)
    return paths

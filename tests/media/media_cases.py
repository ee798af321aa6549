"""Constants of the coded test media (shared by the media fixtures and tests)."""

from __future__ import annotations

import numpy as np

FPS = 25
NUM_FRAMES = 100  # 4 s
ONSETS = np.array([0.2113, 0.9371, 1.5052, 2.2217, 3.0391, 3.6113])
VIDEO_FORMATS = ["mp4", "mkv", "webm", "avi", "mov"]
AUDIO_ONLY_FORMATS = ["wav", "flac", "ogg"]


def native_rate(fmt: str) -> int:
    return 48000 if fmt in ("webm", "ogg") else 44100

"""The manifest's columns: their names, order and types, shared by the Manifest and its readers and writers."""

from __future__ import annotations

from typing import Any

import numpy as np

# column -> numpy dtype; "str" marks a PackedStrings column. Order is the CSV column order.
COLUMNS: dict[str, Any] = {
    "path": "str",
    "duration": np.float64,
    "has_video": np.bool_,
    "has_audio": np.bool_,
    "video_fps": np.float64,
    "width": np.int32,
    "height": np.int32,
    "num_frames": np.int64,
    "audio_sample_rate": np.int32,
    "audio_channels": np.int16,
    "label": "str",
    "split": "str",
    "group": "str",
    "error": "str",
}
STRING_COLUMNS = tuple(name for name, dtype in COLUMNS.items() if dtype == "str")
# a hand-written manifest may leave these out; they default to empty strings
OPTIONAL_COLUMNS = ("label", "split", "group", "error")
MODALITIES = ("video", "audio", "both", "any")

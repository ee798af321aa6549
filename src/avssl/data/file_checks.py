"""Probing one file into a manifest row: the media layer's cheap checks, then its probe.

Every outcome is a row of manifest values with `error` empty (usable) or set to "kind: detail",
where the kind is one of FAILURE_KINDS (the health summary groups by it). Nothing here raises for
a bad file; a bug (any other exception) becomes an "internal error" row whose traceback is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from avssl.media.checks import MAX_SIDE, check_file
from avssl.media.errors import (
    CannotOpenError,
    ClipOutsideStreamError,
    DecodeError,
    MediaError,
    NoAudioStreamError,
    NoVideoStreamError,
)

log = logging.getLogger(__name__)

# kind -> when it is reported (documented in docs/data.md)
FAILURE_KINDS = {
    "file not found": "the path does not exist (e.g. listed by a dataset split file but not on disk)",
    "broken symlink": "a symbolic link whose target does not exist",
    "symlink loop": "a symbolic link that points (through other links) back to itself",
    "permission denied": "the file or a folder above it cannot be read by this user",
    "is a directory": "a folder named like a media file",
    "not a regular file": "a FIFO, socket or device named like a media file",
    "zero-byte file": "an empty file",
    "not a media file": "the file starts with text (an HTML error page, a log, a renamed .txt)",
    "truncated": "an MP4/MOV whose boxes run past the end of the file, or whose index (moov) is missing",
    "cannot open": "the demuxer does not recognise the container (random bytes, unknown format)",
    "decode error": "the container opens but its packets do not decode",
    "no streams": "the container holds neither an audio nor a video stream",
    "bad duration": "the file reports a zero, negative or unknown duration",
    "implausible size": "the video declares a frame size larger than MAX_SIDE pixels on a side",
    "timeout": "probing took longer than the per-file timeout (the worker is killed, the run goes on)",
    "worker crashed": "the probing process died on this file (e.g. a segfault in the decoder)",
    "internal error": "an unexpected exception in avssl while probing (a bug: the log has the traceback)",
}
_MEDIA_ERROR_KIND = {
    CannotOpenError: "cannot open",
    DecodeError: "decode error",
    NoVideoStreamError: "no streams",
    NoAudioStreamError: "no streams",
    ClipOutsideStreamError: "decode error",
}
_MEDIA_FIELDS = ("duration", "has_video", "has_audio", "video_fps", "width", "height", "num_frames",
                 "audio_sample_rate", "audio_channels")


def failed_row(path: str, kind: str, detail: str) -> dict[str, Any]:
    """A manifest row for a file that cannot be used: media columns empty, `error` = 'kind: detail'."""
    assert kind in FAILURE_KINDS, kind
    return {"path": path, "duration": math.nan, "error": f"{kind}: {detail}"}


def probe_file(path: str, probe: Callable[[str], Any]) -> dict[str, Any]:
    """Check `path` and probe it with `probe` (avssl.media.probe); return its manifest row.

    An unexpected exception (a bug, not a bad file) is logged with its traceback and reported as an
    "internal error" row, so that one file cannot stop a probe of a whole collection.
    """
    try:
        return _probe_file(path, probe)
    except Exception as err:  # noqa: BLE001  (logged with traceback, and counted in the summary)
        log.exception("%s: unexpected error while probing", path)
        return failed_row(path, "internal error", f"{type(err).__name__}: {err}")


def _probe_file(path: str, probe: Callable[[str], Any]) -> dict[str, Any]:
    problem = check_file(path)
    if problem is not None:
        return failed_row(path, *problem)
    try:
        info = probe(path)
    except MediaError as err:
        kind = next((k for cls, k in _MEDIA_ERROR_KIND.items() if isinstance(err, cls)), "cannot open")
        return failed_row(path, kind, err.reason)
    except PermissionError as err:
        return failed_row(path, "permission denied", err.strerror or str(err))
    row = {name: getattr(info, name) for name in _MEDIA_FIELDS}
    row["path"] = path
    problem = _check_info(row)
    if problem is not None:
        return failed_row(path, *problem)
    row["error"] = ""
    return row


def _check_info(row: dict[str, Any]) -> tuple[str, str] | None:
    if not row["has_video"] and not row["has_audio"]:
        return "no streams", "no audio or video stream"
    duration = row["duration"]
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return "bad duration", f"duration is {duration}"
    if row["has_video"] and max(row["width"], row["height"]) > MAX_SIDE:
        return "implausible size", f"{row['width']}x{row['height']}"
    return None

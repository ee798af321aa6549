"""Probing one file: cheap checks that name the exact problem, then the media layer's probe.

Every outcome is a row of manifest values with `error` empty (usable) or set to "kind: detail",
where the kind is one of FAILURE_KINDS (the health summary groups by it). Nothing here raises for
a bad file; a bug (any other exception) becomes an "internal error" row whose traceback is logged.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import struct
from collections.abc import Callable
from typing import Any

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
MAX_SIDE = 16384
_ISO_BMFF_TOP_LEVEL = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"moof", b"mfra",
                       b"sidx", b"uuid", b"pdin", b"meta", b"prft", b"emsg"}
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
    problem = _check_file(path)
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


def _check_file(path: str) -> tuple[str, str] | None:
    try:
        st = os.stat(path)
    except OSError as err:
        return _stat_problem(path, err)
    if stat.S_ISDIR(st.st_mode):
        return "is a directory", "a folder named like a media file"
    if not stat.S_ISREG(st.st_mode):
        what = "FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "device"
        return "not a regular file", f"a {what}"
    if st.st_size == 0:
        return "zero-byte file", "the file is empty"
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except PermissionError as err:
        return "permission denied", err.strerror or "cannot read"
    except OSError as err:
        return "cannot open", f"cannot read: {err.strerror or err}"
    if _looks_like_text(head):
        preview = head[:24].decode("utf-8", "replace").strip().replace("\n", " ")
        return "not a media file", f"starts with text {preview!r}"
    if head[4:8] in _ISO_BMFF_TOP_LEVEL:
        return _check_iso_bmff(path, st.st_size)
    return None


def _stat_problem(path: str, err: OSError) -> tuple[str, str]:
    if err.errno == errno.ELOOP:
        return "symlink loop", "too many levels of symbolic links"
    if isinstance(err, PermissionError):
        return "permission denied", "a folder above the file cannot be searched"
    if isinstance(err, FileNotFoundError):
        if os.path.islink(path):
            return "broken symlink", f"points to missing {os.readlink(path)!r}"
        return "file not found", "no such file"
    return "cannot open", f"cannot stat: {err.strerror or err}"


def _looks_like_text(head: bytes) -> bool:
    """Printable text with no binary bytes at all: no container starts like that (all use binary magic)."""
    if not head:
        return False
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):  # text byte-order marks
        return True
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def _check_iso_bmff(path: str, size: int) -> tuple[str, str] | None:
    """Walk the top-level boxes of an MP4/MOV: a box past end-of-file or no moov means a cut-off file."""
    seen = set()
    offset = 0
    with open(path, "rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1:  # 64-bit size follows the type
                if len(header) < 16:
                    return "truncated", f"box header cut at byte {offset}"
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # the box extends to the end of the file
                box_size = size - offset
            seen.add(box_type)
            if box_size < 8:
                return "truncated", f"corrupt box {box_type!r} of size {box_size} at byte {offset}"
            if offset + box_size > size:
                name = box_type.decode("latin-1")
                return "truncated", (f"box '{name}' at byte {offset} needs {box_size} bytes, "
                                     f"the file ends {size - offset} bytes after it")
            offset += box_size
    if b"moov" not in seen:
        return "truncated", "no 'moov' box (the index is missing: the write or download did not finish)"
    return None


def _check_info(row: dict[str, Any]) -> tuple[str, str] | None:
    if not row["has_video"] and not row["has_audio"]:
        return "no streams", "no audio or video stream"
    duration = row["duration"]
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return "bad duration", f"duration is {duration}"
    if row["has_video"] and max(row["width"], row["height"]) > MAX_SIDE:
        return "implausible size", f"{row['width']}x{row['height']}"
    return None

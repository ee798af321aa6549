"""Container checks before decoding: what stat() and a file's first bytes say is wrong with it.

Each problem is a FileProblem: a short kind (the manifest's failure kinds, e.g. "zero-byte file",
"truncated") and a detail naming what was found. Nothing here raises for a bad file.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import NamedTuple

from .errors import CannotOpenError

# the largest frame side (pixels) a usable video may declare; more is a corrupt or hostile header
MAX_SIDE = 16384
_ISO_BMFF_TOP_LEVEL = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"moof", b"mfra",
                       b"sidx", b"uuid", b"pdin", b"meta", b"prft", b"emsg"}


class FileProblem(NamedTuple):
    """Why a file cannot be used, found without decoding it."""

    kind: str
    detail: str


def check_file(path: str) -> FileProblem | None:
    """The first problem stat() and the file's first bytes show (missing, not a regular file, empty,
    text, a cut-off MP4/MOV), or None when the file is worth handing to the demuxer."""
    try:
        st = os.stat(path)
    except OSError as err:
        return _stat_problem(path, err)
    if stat.S_ISDIR(st.st_mode):
        return FileProblem("is a directory", "a folder named like a media file")
    if not stat.S_ISREG(st.st_mode):
        what = "FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "device"
        return FileProblem("not a regular file", f"a {what}")
    if st.st_size == 0:
        return FileProblem("zero-byte file", "the file is empty")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except PermissionError as err:
        return FileProblem("permission denied", err.strerror or "cannot read")
    except OSError as err:
        return FileProblem("cannot open", f"cannot read: {err.strerror or err}")
    if _looks_like_text(head):
        preview = head[:24].decode("utf-8", "replace").strip().replace("\n", " ")
        return FileProblem("not a media file", f"starts with text {preview!r}")
    if head[4:8] in _ISO_BMFF_TOP_LEVEL:
        return _check_iso_bmff(path, st.st_size)
    return None


def require_regular_file(path: str) -> None:
    """CannotOpenError naming `path` unless it is (a link to) a regular file. Every open of a media
    file goes through this: opening a FIFO or a device blocks (a FIFO until a writer comes), and one
    swapped in after probing would hang a loader worker. One stat(), no read."""
    try:
        st = os.stat(path)
    except OSError as err:
        problem = _stat_problem(path, err)
        raise CannotOpenError(path, "no such file" if problem.kind == "file not found" else
                              f"{problem.kind}: {problem.detail}") from None
    if not stat.S_ISREG(st.st_mode):
        problem = check_file(path) or FileProblem("not a regular file", "")
        raise CannotOpenError(path, f"{problem.kind}: {problem.detail} (reading it could block), skipped")


def _stat_problem(path: str, err: OSError) -> FileProblem:
    """The problem behind a failed stat() of `path`: a missing file, a broken link, a link loop, ..."""
    if err.errno == errno.ELOOP:
        return FileProblem("symlink loop", "too many levels of symbolic links")
    if isinstance(err, PermissionError):
        return FileProblem("permission denied", "a folder above the file cannot be searched")
    if isinstance(err, FileNotFoundError):
        if os.path.islink(path):
            return FileProblem("broken symlink", f"points to missing {os.readlink(path)!r}")
        return FileProblem("file not found", "no such file")
    return FileProblem("cannot open", f"cannot stat: {err.strerror or err}")


def _looks_like_text(head: bytes) -> bool:
    """Printable text with no binary bytes at all: no container starts like that (all use binary magic)."""
    if not head:
        return False
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):  # text byte-order marks
        return True
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def _check_iso_bmff(path: str, size: int) -> FileProblem | None:
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
                    return FileProblem("truncated", f"box header cut at byte {offset}")
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # the box extends to the end of the file
                box_size = size - offset
            seen.add(box_type)
            if box_size < 8:
                return FileProblem("truncated", f"corrupt box {box_type!r} of size {box_size} at byte {offset}")
            if offset + box_size > size:
                name = box_type.decode("latin-1")
                return FileProblem("truncated", (f"box '{name}' at byte {offset} needs {box_size} bytes, "
                                                 f"the file ends {size - offset} bytes after it"))
            offset += box_size
    if b"moov" not in seen:
        return FileProblem("truncated", "no 'moov' box (the index is missing: the write or download did not finish)")
    return None

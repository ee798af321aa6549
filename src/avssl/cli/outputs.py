"""Outputs of the verbs: checked before the work, and a refused write said in one line after it.

`check_output(path, option)` runs before a verb decodes or trains anything: the file (or, with
`folder=True`, the folder) must be creatable where it is asked for, which is tried by creating and
removing a hidden file in the nearest existing folder (root passes `os.access` everywhere, so only a
real write tells). A failure is a UsageError (exit 2) naming the option and the path.

`disk_error_line(err)` turns an OSError that a full, read-only or forbidden disk raised during the
work into one line naming the path (the CLI exits 1 with it instead of a traceback).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from avssl.errors import UsageError

# errors of the disk or its permissions, not of the program: reported in one line, exit 1
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG})


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(path: str | os.PathLike, option: str, *, folder: bool = False) -> None:
    """UsageError naming `option` unless `path` can be written: a file (its folder is created when
    missing) or, with `folder`, a folder."""
    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    if not folder and p.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    existing = _nearest_existing(p if folder else p.parent)
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".avssl-write-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
        if not folder and p.is_file():
            with open(p, "ab"):  # opening to append writes nothing
                pass
    except OSError as err:
        where = p if not folder and p.is_file() else existing
        raise UsageError(f"{option} {path}: cannot write in {where}: {err.strerror or err}") from None


def disk_error_line(err: OSError) -> str | None:
    """One line for an access the disk refused (full, read-only, no permission), naming the path; None
    for any other OSError (left to its traceback)."""
    if err.errno not in DISK_ERRNOS:
        return None
    where = err.filename if err.filename is not None else "a file"
    return (f"{where}: {err.strerror or err} [{errno.errorcode.get(err.errno, err.errno)}]: the disk is full or "
            "read-only, or the permissions forbid it; free space or fix the permissions and run the command again")

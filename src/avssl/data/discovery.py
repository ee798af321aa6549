"""Finding media files: walk folders for media extensions, in a deterministic (sorted) order."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from avssl.errors import UsageError

log = logging.getLogger(__name__)

MEDIA_EXTENSIONS = frozenset({
    # video containers
    ".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".ogv", ".ts", ".mts",
    ".flv", ".wmv", ".3gp",
    # audio
    ".wav", ".flac", ".mp3", ".m4a", ".ogg", ".oga", ".opus", ".aac",
})


def is_media_name(path: str) -> bool:
    """True when the file name ends in a known media extension (case-insensitive)."""
    return os.path.splitext(path)[1].lower() in MEDIA_EXTENSIONS


def discover_media(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Media files under `paths` (files are taken as given, folders walked), absolute, sorted, unique.

    A folder named like a media file (`clip.mp4/`) is listed too, so that the probe reports it
    rather than silently skipping it; a folder given as a symlink is walked, but symlinked folders met
    inside a walk are not followed (no loops); symlinked files are listed (a loop among them is then
    reported by the probe). A path that does not exist
    is a UsageError naming it.
    """
    found: set[str] = set()
    for given in paths:
        path = os.path.abspath(os.fspath(given))
        if not os.path.lexists(path):
            raise UsageError(f"{os.fspath(given)}: no such file or folder")
        if os.path.isdir(path):
            found.update(_walk(path))
        else:
            found.add(path)  # an explicitly named file is probed whatever its extension
    return sorted(found)


def _walk(root: str) -> list[str]:
    found = []

    def on_error(err: OSError) -> None:
        log.warning("cannot list %s: %s", err.filename, err.strerror)

    for folder, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        dirnames.sort()
        for name in dirnames:
            if is_media_name(name):
                found.append(os.path.join(folder, name))
        found.extend(os.path.join(folder, name) for name in filenames if is_media_name(name))
    return found

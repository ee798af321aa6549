"""Folder per class: `<root>/<class>/**/<file>` with any media extension; the label is `<class>`.

There is no split or group information in such a tree: split and group stay empty (each file is its
own source).
"""

from __future__ import annotations

import os

from avssl.data.adapters.base import Entry, reject_option, reject_split, require_dir
from avssl.data.discovery import discover_media
from avssl.errors import UsageError


def entries(root: str, split: int | None = None, *, class_list: str | None = None,
            name_template: str | None = None) -> list[Entry]:
    """Media files under each top-level folder of `root`, labelled by that folder's name."""
    reject_split("folder", split, "a folder-per-class tree has no splits")
    reject_option("folder", "--class-list", class_list)
    reject_option("folder", "--name-template", name_template)
    root = require_dir(os.path.abspath(root), "dataset folder")
    out = []
    for path in discover_media([root]):
        rel = os.path.relpath(path, root)
        if os.sep not in rel:
            raise UsageError(f"{path}: a file at the top of a folder-per-class tree has no class folder")
        out.append(Entry(path, rel.split(os.sep)[0], "", ""))
    if not out:
        raise UsageError(f"{root}: no media files under <class>/ folders")
    return out

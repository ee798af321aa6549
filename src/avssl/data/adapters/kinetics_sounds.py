"""Kinetics-Sounds: a class-list file over a Kinetics-layout folder `<split>/<class>/<ytid>_<start>_<end>.mp4`.

The class list (one Kinetics class name per line, e.g. `playing bagpipes`) is given with
`--class-list`; no list ships with avssl because the published 32- and 34-class lists differ between
papers. Class folders match names with spaces or underscores, any case. The split is the top folder
name (train, val, test...), the label the class name as written in the list, the group the YouTube id.
"""

from __future__ import annotations

import os
import re

from avssl.data.adapters.base import Entry, read_lines, reject_option, reject_split, require_dir, require_file
from avssl.data.discovery import is_media_name
from avssl.errors import UsageError

_CLIP_NAME = re.compile(r"^(?P<ytid>.+)_(?P<start>\d+)_(?P<end>\d+)$")


def entries(root: str, split: int | None = None, *, class_list: str | None = None,
            name_template: str | None = None) -> list[Entry]:
    """Media files of the listed classes under every `<split>/<class>/` folder of `root`."""
    reject_split("kinetics-sounds", split, "the split is the top folder (train, val, test)")
    reject_option("kinetics-sounds", "--name-template", name_template)
    if class_list is None:
        raise UsageError("--dataset kinetics-sounds needs --class-list FILE (one class name per line)")
    root = require_dir(os.path.abspath(root), "Kinetics folder")
    wanted = {_key(name): name for _, name in read_lines(require_file(class_list, "class list"))}
    out, found = [], set()
    for split_name in sorted(os.listdir(root)):
        split_dir = os.path.join(root, split_name)
        if not os.path.isdir(split_dir):
            continue
        for class_dir in sorted(os.listdir(split_dir)):
            label = wanted.get(_key(class_dir))
            if label is None or not os.path.isdir(os.path.join(split_dir, class_dir)):
                continue
            found.add(label)
            for name in sorted(os.listdir(os.path.join(split_dir, class_dir))):
                if is_media_name(name):
                    path = os.path.join(split_dir, class_dir, name)
                    out.append(Entry(path, label, split_name, youtube_id(name)))
    if not out:
        raise UsageError(f"{root}: no videos of the {len(wanted)} listed classes under <split>/<class>/")
    missing = sorted(set(wanted.values()) - found)
    if missing:
        raise UsageError(f"{root}: classes of {class_list} without a folder: {', '.join(missing[:5])}")
    return sorted(out, key=lambda e: e.path)


def youtube_id(file_name: str) -> str:
    """`<ytid>` of `<ytid>_<start>_<end>.mp4` (YouTube ids may contain '_' and '-')."""
    stem = os.path.splitext(file_name)[0]
    match = _CLIP_NAME.match(stem)
    return match.group("ytid") if match else stem


def _key(class_name: str) -> str:
    return class_name.strip().lower().replace("_", " ")

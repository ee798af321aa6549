"""VGG-Sound: `vggsound.csv` rows `<youtube id>,<start seconds>,<label>,<split>` (no header).

Copies name their files differently, so the file of a row comes from a template relative to the
root (`--name-template`), default DEFAULT_TEMPLATE; fields: {ytid}, {start} (int seconds, format it
as {start:06d}), {end} (start + 10), {label}, {split}. The split is the CSV's train/test, the group
the YouTube id. Rows whose file is absent get a "file not found" row from the probe (VGG-Sound
copies always miss some videos that left YouTube).
"""

from __future__ import annotations

import csv
import os

from avssl.data.adapters.base import Entry, reject_option, reject_split, require_file
from avssl.errors import UsageError

DEFAULT_TEMPLATE = "video/{ytid}_{start:06d}.mp4"
CLIP_SECONDS = 10


def entries(root: str, split: int | None = None, *, class_list: str | None = None,
            name_template: str | None = None) -> list[Entry]:
    """Every row of vggsound.csv, mapped to a file by the name template."""
    reject_split("vggsound", split, "the split (train/test) comes from vggsound.csv")
    reject_option("vggsound", "--class-list", class_list)
    template = name_template or DEFAULT_TEMPLATE
    root = os.path.abspath(root)
    table = require_file(os.path.join(root, "vggsound.csv"), "VGG-Sound vggsound.csv")
    out = []
    with open(table, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            if len(row) != 4:
                raise UsageError(f"{table}:{line_no}: expected 'ytid,start,label,split', got {row!r}")
            ytid, start, label, split_name = (field.strip() for field in row)
            if not start.isdigit():
                raise UsageError(f"{table}:{line_no}: start {start!r} is not whole seconds")
            name = render_template(template, ytid, int(start), label, split_name)
            out.append(Entry(os.path.join(root, name), label, split_name, ytid))
    return sorted(out, key=lambda e: e.path)


def render_template(template: str, ytid: str, start: int, label: str, split: str) -> str:
    """The file name of one clip; a bad template is a UsageError that shows it."""
    try:
        return template.format(ytid=ytid, start=start, end=start + CLIP_SECONDS, label=label, split=split)
    except (KeyError, IndexError, ValueError) as err:
        raise UsageError(f"--name-template {template!r}: {err!r}; fields: ytid, start, end, label, split") from None

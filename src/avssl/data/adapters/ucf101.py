"""UCF101: `UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi` with `ucfTrainTestlist/` split files.

classInd.txt lines are `<1-based index> <Class>`; trainlist0N.txt lines `<Class>/<file>.avi <index>`;
testlist0N.txt lines `<Class>/<file>.avi`. The label is the class name; the group is the
`v_<Class>_g<GG>` prefix (clips of one group are cut from one longer video; the official splits
keep each group on one side). Split N holds out groups 1-7, 8-14, 15-21 for N = 1, 2, 3.
"""

from __future__ import annotations

import os
import re

from avssl.data.adapters.base import (
    Entry,
    check_split,
    first_existing,
    read_lines,
    reject_option,
)
from avssl.errors import UsageError

SPLITS = (1, 2, 3)
_GROUP = re.compile(r"^(v_.+_g\d+)_c\d+$")


def entries(root: str, split: int | None = None, *, class_list: str | None = None,
            name_template: str | None = None) -> list[Entry]:
    """Every video of trainlist0N + testlist0N with label, split "train"/"test" and group."""
    split = check_split("ucf101", split, SPLITS)
    reject_option("ucf101", "--class-list", class_list)
    reject_option("ucf101", "--name-template", name_template)
    root = os.path.abspath(root)
    lists = first_existing([os.path.join(root, "ucfTrainTestlist"), root], "ucfTrainTestlist folder")
    videos = first_existing([os.path.join(root, "UCF-101"), os.path.join(root, "UCF101"), root],
                            "UCF-101 video folder")
    classes = read_class_index(os.path.join(lists, "classInd.txt"))
    out = []
    for kind in ("train", "test"):
        list_file = os.path.join(lists, f"{kind}list{split:02d}.txt")
        if not os.path.isfile(list_file):
            raise UsageError(f"{list_file}: UCF101 split file not found")
        for line_no, line in read_lines(list_file):
            rel, _, index = line.partition(" ")
            label = _label_of(rel, index.strip(), classes, f"{list_file}:{line_no}")
            out.append(Entry(os.path.join(videos, rel), label, kind, group_of(rel)))
    return sorted(out, key=lambda e: e.path)


def read_class_index(path: str) -> dict[int, str]:
    """classInd.txt as {1-based index: class name}."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: UCF101 classInd.txt not found")
    classes = {}
    for line_no, line in read_lines(path):
        index, _, name = line.partition(" ")
        if not index.isdigit() or not name.strip():
            raise UsageError(f"{path}:{line_no}: expected '<index> <ClassName>', got {line!r}")
        classes[int(index)] = name.strip()
    return classes


def group_of(rel_path: str) -> str:
    """`v_<Class>_g<GG>` of `<Class>/v_<Class>_g<GG>_c<CC>.avi` (the file stem if it does not match)."""
    stem = os.path.splitext(os.path.basename(rel_path))[0]
    match = _GROUP.match(stem)
    return match.group(1) if match else stem


def _label_of(rel: str, index: str, classes: dict[int, str], where: str) -> str:
    folder = rel.replace("\\", "/").split("/")[0]
    names = set(classes.values())
    if index:
        if not index.isdigit() or int(index) not in classes:
            raise UsageError(f"{where}: class index {index!r} is not in classInd.txt")
        label = classes[int(index)]
        if folder in names and folder != label:
            raise UsageError(f"{where}: {rel!r} is in folder {folder!r} but labelled {label!r}")
        return label
    if folder not in names:
        raise UsageError(f"{where}: class folder {folder!r} of {rel!r} is not in classInd.txt")
    return folder

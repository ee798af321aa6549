"""HMDB51: `<class>/<video>.avi` with `testTrainMulti_7030_splits/<class>_test_split<N>.txt`.

Each split file line is `<video>.avi <id>`: 1 = train, 2 = test, 0 = not used in split N. Unused
videos are kept with split "unused" (they are real clips, fine for self-supervised pretraining;
evaluation selects "train" and "test" only). The group is the video name without its trailing
`_<clip number>`: HMDB51 names are `<source>_<action>_<body>_<camera>_<people>_<view>_<quality>_<n>`,
so clips cut from one source clip with the same meta tags share a group.
"""

from __future__ import annotations

import os
import re

from avssl.data.adapters.base import Entry, check_split, first_existing, read_lines, reject_option
from avssl.errors import UsageError

SPLITS = (1, 2, 3)
SPLIT_IDS = {"0": "unused", "1": "train", "2": "test"}
_CLIP_NUMBER = re.compile(r"_\d+$")


def entries(root: str, split: int | None = None, *, class_list: str | None = None,
            name_template: str | None = None) -> list[Entry]:
    """Every video named in the `*_test_split<N>.txt` files, with split train/test/unused."""
    split = check_split("hmdb51", split, SPLITS)
    reject_option("hmdb51", "--class-list", class_list)
    reject_option("hmdb51", "--name-template", name_template)
    root = os.path.abspath(root)
    splits_dir = first_existing([os.path.join(root, "testTrainMulti_7030_splits"), root],
                                "testTrainMulti_7030_splits folder")
    suffix = f"_test_split{split}.txt"
    split_files = sorted(name for name in os.listdir(splits_dir) if name.endswith(suffix))
    if not split_files:
        raise UsageError(f"{splits_dir}: no '<class>{suffix}' files (HMDB51 split {split})")
    videos = _video_root(root, split_files[0][: -len(suffix)])
    out = []
    for name in split_files:
        label = name[: -len(suffix)]
        path = os.path.join(splits_dir, name)
        for line_no, line in read_lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in SPLIT_IDS:
                raise UsageError(f"{path}:{line_no}: expected '<video>.avi <0|1|2>', got {line!r}")
            video, split_id = parts
            group = f"{label}/{_CLIP_NUMBER.sub('', os.path.splitext(video)[0])}"
            out.append(Entry(os.path.join(videos, label, video), label, SPLIT_IDS[split_id], group))
    return sorted(out, key=lambda e: e.path)


def _video_root(root: str, first_class: str) -> str:
    candidates = [os.path.join(root, sub) for sub in ("hmdb51_org", "videos", "HMDB51", "")]
    for candidate in candidates:
        if os.path.isdir(os.path.join(candidate, first_class)):
            return candidate
    raise UsageError(f"HMDB51 class folder {first_class!r} not found under any of: "
                     + ", ".join(c.rstrip(os.sep) for c in candidates))

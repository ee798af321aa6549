"""The demo world's labelled sets in the official file formats: UCF101 split lists and ESC-50 metadata.

UCF101: `ucfTrainTestlist/classInd.txt` ("1 ClassName"), `trainlist0N.txt` ("Class/v_Class_gGG_cCC.mp4 1",
1-based label) and `testlist0N.txt` ("Class/v_Class_gGG_cCC.mp4"); paths are relative to `ucf/UCF-101`.
As in UCF101, split N tests a contiguous block of groups (there 1-7, 8-14, 15-21 of 25), so clips of
one group never straddle train and test. ESC-50: `meta/esc50.csv` with the columns
`filename,fold,target,category,esc10,src_file,take`; all takes of one source share its fold.
"""

from __future__ import annotations

import csv
import os

from avssl.data.synthetic.catalogue import OBJECT_CLASSES, action_classes
from avssl.data.synthetic.config import WorldConfig

UCF_LIST_DIR = "ucf/ucfTrainTestlist"
ESC_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def ucf_clip_name(class_name: str, group: int, clip: int) -> str:
    return f"v_{class_name}_g{group:02d}_c{clip:02d}.mp4"


def ucf_splits(n_groups: int) -> dict[str, list[int]]:
    """Split number -> its test groups: UCF101's 7-of-25 share, contiguous blocks, up to 3 splits."""
    block = max(1, round(n_groups * 7 / 25))
    return {str(n): list(range((n - 1) * block + 1, n * block + 1))
            for n in (1, 2, 3) if n * block <= n_groups and block < n_groups}


def write_ucf_lists(out: str, cfg: WorldConfig, records: list[dict]) -> None:
    """classInd.txt and trainlist/testlist 01..03 for the UCF-style records (world.json entries)."""
    folder = os.path.join(out, UCF_LIST_DIR)
    os.makedirs(folder, exist_ok=True)
    classes = action_classes(cfg.n_object_classes)
    with open(os.path.join(folder, "classInd.txt"), "w") as f:
        f.writelines(f"{i + 1} {name}\n" for i, (name, _, _) in enumerate(classes))
    ordered = sorted(records, key=lambda r: (r["label_index"], r["group"], r["clip"]))
    for split, test_groups in ucf_splits(cfg.ucf_groups).items():
        test = set(test_groups)
        with open(os.path.join(folder, f"trainlist0{split}.txt"), "w") as f:
            f.writelines(f"{_list_path(r)} {r['label_index']}\n" for r in ordered if r["group"] not in test)
        with open(os.path.join(folder, f"testlist0{split}.txt"), "w") as f:
            f.writelines(f"{_list_path(r)}\n" for r in ordered if r["group"] in test)


def _list_path(record: dict) -> str:
    return record["path"].removeprefix("ucf/UCF-101/")


def esc_source_id(cfg: WorldConfig, class_id: int, fold: int, source: int) -> int:
    """A unique 6-digit source id per recording, as ESC-50's freesound ids (e.g. 100032)."""
    return 100000 + (class_id * 5 + fold - 1) * cfg.esc_sources_per_class_per_fold + source + 1


def write_esc_meta(out: str, cfg: WorldConfig, records: list[dict]) -> None:
    """esc/meta/esc50.csv; ESC-10-like subset (esc10 = True): the first half of the sound classes."""
    os.makedirs(os.path.join(out, "esc", "meta"), exist_ok=True)
    n_esc10 = (cfg.n_object_classes + 1) // 2
    with open(os.path.join(out, "esc", "meta", "esc50.csv"), "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ESC_COLUMNS)
        for r in sorted(records, key=lambda r: os.path.basename(r["path"])):
            writer.writerow([os.path.basename(r["path"]), r["fold"], r["target"],
                             OBJECT_CLASSES[r["target"]].sound, str(r["target"] < n_esc10), r["src_file"], r["take"]])

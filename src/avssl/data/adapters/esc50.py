"""ESC-50: `audio/<fold>-<source>-<take>-<target>.wav` described by `meta/esc50.csv`.

esc50.csv columns: filename, fold, target, category, esc10, src_file, take. The label is the
category name, the split is the fold number ("1".."5": clips of one recording share a fold, so the
folds are the only leak-free splits), the group is src_file. Evaluation picks the held-out fold
with `fold_split(manifest, test_fold)`.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from avssl.data.adapters.base import Entry, reject_option, reject_split, require_file
from avssl.data.manifest import Manifest
from avssl.errors import UsageError

FOLDS = (1, 2, 3, 4, 5)
REQUIRED_COLUMNS = ("filename", "fold", "category", "src_file")


def entries(root: str, split: int | None = None, *, class_list: str | None = None,
            name_template: str | None = None) -> list[Entry]:
    """Every clip of meta/esc50.csv with label = category, split = fold number, group = src_file."""
    reject_split("esc50", split, "the manifest keeps each clip's fold in `split`; the held-out fold "
                 "is chosen at evaluation (fold_split)")
    reject_option("esc50", "--class-list", class_list)
    reject_option("esc50", "--name-template", name_template)
    root = os.path.abspath(root)
    meta = require_file(os.path.join(root, "meta", "esc50.csv"), "ESC-50 meta/esc50.csv")
    with open(meta, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"{meta}: missing column(s) {', '.join(missing)}")
        out = []
        for line_no, row in enumerate(reader, start=2):
            if row["fold"] not in {str(f) for f in FOLDS}:
                raise UsageError(f"{meta}:{line_no}: fold {row['fold']!r} is not one of 1-5")
            path = os.path.join(root, "audio", row["filename"])
            out.append(Entry(path, row["category"], row["fold"], row["src_file"]))
    return sorted(out, key=lambda e: e.path)


def fold_split(manifest: Manifest, test_fold: int) -> Manifest:
    """A copy whose `split` is "test" for clips of `test_fold` and "train" for the other folds."""
    if test_fold not in FOLDS:
        raise UsageError(f"ESC-50 test fold must be one of 1-5, got {test_fold!r}")
    folds = manifest.strings("split")
    unknown = sorted(set(folds.tolist()) - {str(f) for f in FOLDS})
    if unknown:
        raise UsageError(f"manifest split values {unknown[:3]} are not ESC-50 folds (1-5)")
    return manifest.with_column("split", np.where(folds == str(test_fold), "test", "train").tolist())

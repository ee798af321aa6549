"""The splits of a fine-tuning run: each --data manifest (UCF101/HMDB51: one per official split) or
each fold of one manifest (ESC-50: `finetune.folds`) as labelled train and test tables, all read and
checked before the first split trains (a UsageError names the manifest)."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import numpy as np

from avssl.config.finetune import FinetuneSection
from avssl.data.adapters.esc50 import fold_split
from avssl.data.manifest import Manifest
from avssl.data.recipes.finetune import LabelledTable
from avssl.errors import UsageError
from avssl.train.resume import table_fingerprint
from avssl.train.table import FileRequirements, unfit_rows

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """One run of the protocol: `name` (split1.., fold1..) names its folder under --out."""

    name: str
    manifest: str
    train: LabelledTable
    test: LabelledTable
    class_names: list[str]
    left_out: list[tuple[str, str]]  # (path, reason) of training rows the model's sample cannot use


def read_splits(paths: list[str], section: FinetuneSection, requirements: FileRequirements,
                batch_size: int) -> list[SplitData]:
    """Every split of the run; UsageError naming the manifest when one cannot serve (missing, no
    labelled rows in 'train' or 'test', fewer training files than batch_size)."""
    if section.folds:
        if len(paths) != 1:
            raise UsageError(f"finetune.folds={section.folds}: give one --data manifest holding every fold in its "
                             f"`split` column (got {len(paths)})")
        manifest = _load(paths[0])
        splits = [_split(f"fold{fold}", paths[0], _folds(manifest, fold, paths[0]), requirements, batch_size)
                  for fold in section.folds]
    else:
        if section.splits and len(paths) != section.splits:
            log.warning("the recipe's protocol has %d splits and %d --data manifests were given: results.json's "
                        "mean is over %d", section.splits, len(paths), len(paths))
        splits = [_split(f"split{n}", path, _load(path), requirements, batch_size)
                  for n, path in enumerate(paths, start=1)]
    return splits


def _load(path: str) -> Manifest:
    if not os.path.isfile(path):
        raise UsageError(f"--data {path}: manifest not found")
    try:
        return Manifest.load(path)
    except (ValueError, KeyError) as err:
        raise UsageError(f"--data {path}: {err}") from None


def _folds(manifest: Manifest, fold: int, path: str) -> Manifest:
    try:
        return fold_split(manifest, fold)
    except UsageError as err:
        raise UsageError(f"--data {path}: {err} (finetune.folds needs fold numbers in the `split` column)") from None


def _split(name: str, path: str, manifest: Manifest, requirements: FileRequirements, batch_size: int) -> SplitData:
    index = manifest.label_index()  # over every row: the same classes in each split of one set
    usable = manifest.usable_mask(requirements.streams) & (manifest.strings("label") != "")
    split = manifest.strings("split")
    unfit = unfit_rows(manifest, requirements)
    train_rows = [i for i in np.flatnonzero(usable & (split == "train")) if int(i) not in unfit]
    test_rows = np.flatnonzero(usable & (split == "test"))
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise UsageError(f"--data {path}: needs labelled rows with {requirements.streams} in split 'train' and in "
                         f"'test' (has {len(train_rows)} and {len(test_rows)})")
    if batch_size > len(train_rows):
        raise UsageError(f"--data {path}: data.batch_size={batch_size} is more than its {len(train_rows)} usable "
                         "training files")
    train, test = manifest.take(np.asarray(train_rows)), manifest.take(test_rows)
    left_out = [reason for i, reason in unfit.items() if split[i] == "train"]
    if left_out:
        log.info("%s: %d training rows of %s left out (the model's sample cannot use them: %s; listed in its "
                 "bad_files.csv)", name, len(left_out), path, left_out[0][1])
    return SplitData(name, path, LabelledTable.from_manifest(train, index), LabelledTable.from_manifest(test, index),
                     list(index), left_out)


def labelled_fingerprint(labelled: LabelledTable) -> str:
    """The training table's fingerprint (avssl.train.resume.table_fingerprint) with its labels: a
    resume on relabelled files is refused like one on other files."""
    digest = hashlib.sha256(table_fingerprint(labelled.table).encode("utf-8"))
    digest.update(np.ascontiguousarray(labelled.labels, dtype="<i8").tobytes())
    return "sha256:" + digest.hexdigest()

"""Evaluation protocols: which rows of which features file train and which test, per split or fold.

Two protocols, chosen with `--protocol` or inferred from the `split` column:

- `splits` (UCF101, HMDB51): one features file per official split, `split` is "train" / "test" (other
  values such as HMDB51's "unused" are left out). One run per file; the result averages the runs.
- `folds` (ESC-50): one features file whose `split` is the fold number; for every fold present, train
  on the other folds and test on it (ESC-50: the 5 official folds); the result averages the runs.

`auto` picks `folds` when every split value is an integer and `splits` when "train" and "test" occur.
Every run is checked for leaks: a source group (the `group` column, the path when empty) on both the
training and the test side is an error, never a silently optimistic number. Files averaged together
must be different splits of one model (check_one_model): the same file or rows twice, or files of two
models (their `model` entries, or their dimensions, differ) are errors.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from avssl.errors import UsageError
from avssl.evaluate.features import Features

log = logging.getLogger(__name__)

PROTOCOLS = ("auto", "splits", "folds")


@dataclass(frozen=True)
class Run:
    """One train/test run: row indices into `features` ([n_train], [n_test] int64)."""

    name: str
    features: Features
    train: np.ndarray
    test: np.ndarray


def infer_protocol(features: Features) -> str:
    """"folds" when every split value is an integer, "splits" when "train" and "test" occur."""
    values = set(np.unique(features.split).tolist())
    if values and all(v.strip().isdigit() for v in values):
        return "folds"
    if {"train", "test"} <= values:
        return "splits"
    raise UsageError(f"{features.source}: cannot infer the protocol from split values "
                     f"{sorted(values)[:6]}: expected 'train'/'test' (--protocol splits) or fold "
                     f"numbers (--protocol folds)")


def build_runs(feature_sets: list[Features], protocol: str = "auto") -> tuple[str, list[Run]]:
    """(protocol used, runs): one run per file (splits) or per fold of the single file (folds)."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if not feature_sets:
        raise UsageError("no features files given")
    for f in feature_sets:
        check_labelled(f)
    if protocol == "auto":
        found = {infer_protocol(f) for f in feature_sets}
        if len(found) > 1:
            raise UsageError("features files mix fold numbers and train/test splits; give one protocol's files")
        protocol = found.pop()
    if protocol == "splits":
        runs = [split_run(f) for f in feature_sets]
    else:
        if len(feature_sets) != 1:
            raise UsageError(f"--protocol folds takes one features file (the folds are its split "
                             f"column), got {len(feature_sets)}")
        runs = fold_runs(feature_sets[0])
    for run in runs:
        check_no_group_leak(run)
        unlabelled = int((run.features.label[np.r_[run.train, run.test]] == "").sum())
        if unlabelled:
            raise UsageError(f"{run.features.source} ({run.name}): {unlabelled} train/test row(s) without a label")
    return protocol, runs


def check_labelled(features: Features) -> None:
    """UsageError saying what to run instead when a file has no label or no split in any row (features
    of unlabelled files, e.g. the pretraining set): the linear probe, kNN and class retrieval need a
    labelled set with official splits or folds."""
    where = features.source or "features"
    labelled = bool((features.label != "").any())
    split = bool((features.split != "").any())
    if labelled and split:
        return
    what = "no label and no split" if not labelled and not split else "no label" if not labelled else "no split"
    raise UsageError(
        f"{where}: {what} in any row (features of unlabelled files?): the linear probe, kNN and class retrieval "
        "train on labelled rows of official splits or folds. Probe a labelled set (`avssl probe UCF101/ --dataset "
        "ucf101 --split 1 --out ucf1.csv`, or `--dataset esc50` for folds), extract it "
        "with `avssl extract --checkpoint CKPT --data ucf1.csv --out ucf1.npz` and evaluate that; unlabelled "
        "features support `avssl eval retrieval FILE --cross-modal` (extracted with --modality both --space "
        "embedding)")


def split_run(features: Features) -> Run:
    """The train rows and test rows of one official split's features file."""
    train = np.flatnonzero(features.split == "train")
    test = np.flatnonzero(features.split == "test")
    if len(train) == 0 or len(test) == 0:
        raise UsageError(f"{features.source}: needs rows with split 'train' and 'test' "
                         f"(has {sorted(set(features.split.tolist()))[:6]})")
    left_out = len(features) - len(train) - len(test)
    if left_out:
        log.info("%s: %d rows neither train nor test are left out", features.source, left_out)
    name = os.path.splitext(os.path.basename(features.source))[0] if features.source else "split"
    return Run(name=name, features=features, train=train, test=test)


def fold_runs(features: Features) -> list[Run]:
    """Leave-one-fold-out runs over the fold numbers in `split`, in increasing fold order."""
    values = features.split
    if not all(v.strip().isdigit() for v in np.unique(values)):
        raise UsageError(f"{features.source}: --protocol folds needs fold numbers in 'split', "
                         f"got {sorted(set(values.tolist()))[:6]}")
    folds = sorted({int(v) for v in values.tolist()})
    if len(folds) < 2:
        raise UsageError(f"{features.source}: needs at least 2 folds, found {folds}")
    numbers = np.array([int(v) for v in values.tolist()])
    return [Run(name=f"fold{fold}", features=features, train=np.flatnonzero(numbers != fold),
                test=np.flatnonzero(numbers == fold)) for fold in folds]


def check_no_group_leak(run: Run) -> None:
    """UsageError when a source group has rows on both sides of `run` (a leak that inflates scores)."""
    groups = run.features.groups()
    shared = np.intersect1d(groups[run.train], groups[run.test])
    if len(shared):
        raise UsageError(f"{run.features.source} ({run.name}): {len(shared)} source group(s) on both the "
                         f"training and the test side, e.g. {str(shared[0])!r}; use the official splits/folds")


def check_one_model(feature_sets: list[Features], modalities: tuple[str, ...]) -> list[str]:
    """UsageError when files given together cannot be averaged as splits of one model's evaluation:
    one file (or the very same rows) twice, or files of different models (their `model` entries
    differ, or the dimensions of `modalities`). Returns warnings for files that do not record their model."""
    for i, a in enumerate(feature_sets):
        for b in feature_sets[:i]:
            if os.path.realpath(a.source) == os.path.realpath(b.source):
                raise UsageError(f"{a.source}: given twice; give each split's features file once")
            if a.model and b.model and a.model != b.model:
                raise UsageError(f"{b.source} and {a.source} come from different models ({b.model!r} and "
                                 f"{a.model!r}); evaluate each model on its own and compare with `avssl eval compare`")
            if np.array_equal(a.path, b.path) and np.array_equal(a.split, b.split):
                raise UsageError(f"{b.source} and {a.source} hold the same rows and splits: one split twice "
                                 "(or one split of two models) would count as two runs")
            for name in modalities:
                x, y = getattr(a, name), getattr(b, name)
                if x is not None and y is not None and x.shape[1] != y.shape[1]:
                    raise UsageError(f"{b.source} and {a.source} have {name} features of {y.shape[1]} and "
                                     f"{x.shape[1]} dimensions: they come from different models")
    unknown = [f.source for f in feature_sets if not f.model]
    if len(feature_sets) <= 1 or not unknown:
        return []
    warning = (f"{', '.join(unknown)}: the file does not record the model it comes from (written before avssl "
               "recorded it): make sure all files given together come from one model")
    return [warning]

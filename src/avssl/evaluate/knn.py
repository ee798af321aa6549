"""kNN protocol on frozen features: per run, the train rows vote for the test rows (cosine kNN,
weighted or majority vote, with the tie rules of avssl.models.knn); top-1 / top-5 averaged over runs."""

from __future__ import annotations

import logging

import numpy as np

from avssl.errors import UsageError
from avssl.evaluate.linear import topk_accuracy, unseen_classes, unseen_warning
from avssl.evaluate.protocols import Run
from avssl.models.knn import knn_class_scores

log = logging.getLogger(__name__)


def evaluate_knn(runs: list[Run], modality: str, k: int = 20, weighting: str = "weighted",
                 temperature: float = 0.07) -> dict:
    """kNN top-1 / top-5 of every run (train rows vote for test rows), averaged over runs.

    UsageError for k < 1 or a training side of fewer than 2 classes (every vote would be right);
    test rows of a class absent from training count as errors and are listed per run in
    `unseen_test_classes`, with a line in `warnings`."""
    if k < 1:
        raise UsageError(f"--k must be at least 1, got {k}")
    per_run, first, warnings = [], None, []
    for run in runs:
        f = run.features
        x = f.matrix(modality)
        classes = sorted(set(f.label[run.train].tolist()))
        if len(classes) < 2:
            raise UsageError(f"{f.source} ({run.name}): the training side holds {len(classes)} class(es) "
                             f"{classes}; kNN needs at least 2 (with one, every vote is right)")
        index = {name: i for i, name in enumerate(classes)}
        y_train = np.array([index[v] for v in f.label[run.train].tolist()], dtype=np.int64)
        y_test = np.array([index.get(v, -1) for v in f.label[run.test].tolist()], dtype=np.int64)
        keys = knn_class_scores(x[run.train], y_train, x[run.test], len(classes), k, weighting, temperature)
        top1, top5 = topk_accuracy(keys, y_test, 1), topk_accuracy(keys, y_test, 5)
        log.info("%s: kNN top1 %.4f top5 %.4f", run.name, top1, top5)
        unseen = unseen_classes(f.label[run.test], classes)
        per_run.append({"name": run.name, "top1": top1, "top5": top5, "n_train": int(len(run.train)),
                        "n_test": int(len(run.test)), "n_classes": len(classes), "unseen_test_classes": unseen})
        warnings += unseen_warning(run, unseen, f.label[run.test])
        if first is None:
            first = {"classes": classes, "y_true": y_test, "y_pred": keys.argmax(axis=1)}
    return {"top1": float(np.mean([r["top1"] for r in per_run])),
            "top5": float(np.mean([r["top5"] for r in per_run])), "n_classes": max(r["n_classes"] for r in per_run),
            "runs": per_run, "warnings": warnings,
            "_confusion": first}

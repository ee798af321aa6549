"""kNN protocol on frozen features: per run, the train rows vote for the test rows (cosine kNN,
weighted or majority vote, with the tie rules of avssl.models.knn); top-1 / top-5 averaged over runs."""

from __future__ import annotations

import logging

import numpy as np

from avssl.evaluate.linear import topk_accuracy
from avssl.evaluate.protocols import Run
from avssl.models.knn import knn_class_scores

log = logging.getLogger(__name__)


def evaluate_knn(runs: list[Run], modality: str, k: int = 20, weighting: str = "weighted",
                 temperature: float = 0.07) -> dict:
    """kNN top-1 / top-5 of every run (train rows vote for test rows), averaged over runs."""
    per_run, first = [], None
    for run in runs:
        f = run.features
        x = f.matrix(modality)
        classes = sorted(set(f.label[run.train].tolist()))
        index = {name: i for i, name in enumerate(classes)}
        y_train = np.array([index[v] for v in f.label[run.train].tolist()], dtype=np.int64)
        y_test = np.array([index.get(v, -1) for v in f.label[run.test].tolist()], dtype=np.int64)
        keys = knn_class_scores(x[run.train], y_train, x[run.test], len(classes), k, weighting, temperature)
        top1, top5 = topk_accuracy(keys, y_test, 1), topk_accuracy(keys, y_test, 5)
        log.info("%s: kNN top1 %.4f top5 %.4f", run.name, top1, top5)
        per_run.append({"name": run.name, "top1": top1, "top5": top5,
                        "n_train": int(len(run.train)), "n_test": int(len(run.test))})
        if first is None:
            first = {"classes": classes, "y_true": y_test, "y_pred": keys.argmax(axis=1)}
    return {"top1": float(np.mean([r["top1"] for r in per_run])),
            "top5": float(np.mean([r["top5"] for r in per_run])), "runs": per_run, "_confusion": first}

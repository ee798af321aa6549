"""Cosine kNN classification on frozen features: weighted (default) or majority vote of the k nearest.

Weighted voting follows the instance-discrimination kNN monitor of the self-supervised literature
(Wu et al. 2018; used by MoCo, DINO): a neighbour with cosine similarity s adds exp(s / temperature)
to its class. Majority voting adds 1. Classes are ranked by their vote; a tie goes to the class whose
best neighbour is more similar (then to the lower class index), so results never depend on luck.
Neighbours are the k most similar training rows (a tie at the k-th place keeps the lower row index).
"""

from __future__ import annotations

import logging

import numpy as np

from avssl.errors import UsageError
from avssl.evaluate.linear import topk_accuracy
from avssl.evaluate.protocols import Run

log = logging.getLogger(__name__)

WEIGHTINGS = ("weighted", "majority")
CHUNK = 1024  # query rows per similarity block: bounds memory at CHUNK x gallery floats


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of x [N, D] scaled to unit length (float64; an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[Na, Nb] cosine similarities of the rows of a [Na, D] and b [Nb, D]."""
    return l2_normalise(a) @ l2_normalise(b).T


def knn_class_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int,
                     k: int = 20, weighting: str = "weighted", temperature: float = 0.07) -> np.ndarray:
    """Class ranking keys [M, C] for test_x [M, D] from train_x [N, D] with int labels train_y [N].

    The result orders classes exactly as the vote with its tie rule: larger is better, and argsort of
    its negation (stable) gives the ranked classes.
    """
    if weighting not in WEIGHTINGS:
        raise UsageError(f"kNN weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if k < 1:
        raise UsageError(f"kNN k must be >= 1, got {k}")
    if temperature <= 0:
        raise UsageError(f"kNN temperature must be > 0, got {temperature}")
    k = min(k, len(train_x))
    train_n = l2_normalise(train_x)
    out = np.empty((len(test_x), n_classes), dtype=np.float64)
    for start in range(0, len(test_x), CHUNK):
        sim = l2_normalise(test_x[start:start + CHUNK]) @ train_n.T
        nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # [m, k], most similar first
        near_sim = np.take_along_axis(sim, nearest, axis=1)
        near_y = train_y[nearest]
        weights = np.exp(near_sim / temperature) if weighting == "weighted" else np.ones_like(near_sim)
        votes = np.zeros((len(sim), n_classes))
        best = np.full((len(sim), n_classes), -np.inf)
        rows = np.repeat(np.arange(len(sim)), k)
        np.add.at(votes, (rows, near_y.ravel()), weights.ravel())
        np.maximum.at(best, (rows, near_y.ravel()), near_sim.ravel())
        # rank by vote, then best similarity: one sortable key via the ranks of the pairs
        order = np.lexsort((-best, -votes), axis=-1)  # [m, C], best class first
        keys = np.empty_like(votes)
        np.put_along_axis(keys, order, -np.arange(n_classes, dtype=np.float64)[None].repeat(len(sim), 0), axis=1)
        out[start:start + len(sim)] = keys
    return out


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

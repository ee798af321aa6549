"""Linear probe on frozen features: standardise, multinomial logistic regression, C by grouped CV.

The inverse regularisation strength C is chosen on the training side only: the training rows are
cut into `cv` folds by source group (all clips of one group land in one fold, so a video never
helps validate itself), each candidate C is scored by mean validation top-1, and the best (the
smallest C on a tie) is refit on the whole training side. Scaling statistics come from the rows a
model is fitted on, never from validation or test rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from avssl.errors import UsageError
from avssl.evaluate.protocols import Run

log = logging.getLogger(__name__)

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
MAX_ITER = 1000


@dataclass
class ProbeResult:
    """One probe run: accuracies, the chosen C, its CV scores and the test predictions."""

    top1: float
    top5: float
    c: float
    cv_scores: dict[float, float]
    classes: list[str]
    y_true: np.ndarray  # [n_test] index into classes, -1 for a class unseen in training
    y_pred: np.ndarray  # [n_test] index into classes


def group_folds(groups: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs: groups shuffled by `seed`, group i goes to fold i mod n_splits.

    n_splits is capped by the number of distinct groups; n_splits or groups below 2 are errors.
    """
    if n_splits < 2:
        raise UsageError(f"--cv must be at least 2 (folds of the training side that choose C), got {n_splits}")
    unique, inverse = np.unique(groups, return_inverse=True)
    n_splits = min(n_splits, len(unique))
    if n_splits < 2:
        raise UsageError(f"cross-validation needs at least 2 source groups on the training side, got {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    fold_of_group[order] = np.arange(len(unique)) % n_splits
    fold = fold_of_group[inverse]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_splits)]


def make_probe(c: float, seed: int) -> Pipeline:
    """StandardScaler + lbfgs multinomial logistic regression with inverse regularisation `c`."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed))


def select_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, cs=DEFAULT_CS, cv: int = 5,
             seed: int = 0) -> tuple[float, dict[float, float]]:
    """(best C, {C: mean validation top-1}) by grouped cross-validation on x [N, D], y [N]."""
    folds = group_folds(groups, cv, seed)
    scores = {}
    for c in sorted(float(c) for c in cs):
        accs = []
        for train, val in folds:
            if len(np.unique(y[train])) < 2:
                raise UsageError("a cross-validation fold holds a single class; lower --cv")
            accs.append(float(np.mean(make_probe(c, seed).fit(x[train], y[train]).predict(x[val]) == y[val])))
        scores[c] = float(np.mean(accs))
    best = max(scores.values())
    return next(c for c, s in scores.items() if s == best), scores


def topk_accuracy(scores: np.ndarray, y_true: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the k highest of scores [N, C] (k capped at C).

    A row with y_true -1 (class unseen in training) is always a miss.
    """
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == y_true[:, None]).any(axis=1)))


def unseen_classes(labels_test: np.ndarray, classes: list[str]) -> list[str]:
    """The test labels that no training row has (sorted): such rows can only count as errors."""
    return sorted(set(labels_test.tolist()) - set(classes))


def unseen_warning(run: Run, unseen: list[str], labels_test: np.ndarray) -> list[str]:
    """[] or one line for a result's `warnings`: how many test rows of `run` have an unseen class."""
    if not unseen:
        return []
    rows = int(np.isin(labels_test, unseen).sum())
    shown = ", ".join(repr(c) for c in unseen[:5]) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
    message = (f"{run.features.source} ({run.name}): {rows} test row(s) of {len(unseen)} class(es) absent from "
               f"training ({shown}) count as errors")
    log.warning("%s", message)
    return [message]


def linear_probe(x_train: np.ndarray, labels_train: np.ndarray, x_test: np.ndarray, labels_test: np.ndarray,
                 groups_train: np.ndarray, cs=DEFAULT_CS, cv: int = 5, seed: int = 0) -> ProbeResult:
    """Fit the probe on x_train [N, D] (string labels [N]) and score x_test [M, D] (labels [M])."""
    classes = sorted(set(labels_train.tolist()))
    if len(classes) < 2:
        raise UsageError(f"the training side holds {len(classes)} class(es); a probe needs at least 2")
    index = {name: i for i, name in enumerate(classes)}
    y_train = np.array([index[v] for v in labels_train.tolist()], dtype=np.int64)
    y_test = np.array([index.get(v, -1) for v in labels_test.tolist()], dtype=np.int64)
    # one BLAS thread: scipy's L-BFGS-B was 5-10x slower with two OpenBLAS threads on 2 cores, even
    # for 4000 x 512 features (docs/evaluation.md)
    with threadpool_limits(limits=1, user_api="blas"):
        c, cv_scores = select_c(x_train, y_train, groups_train, cs, cv, seed)
        model = make_probe(c, seed).fit(x_train, y_train)
    proba = model.predict_proba(x_test)  # [M, C], columns in class order 0..C-1
    y_pred = proba.argmax(axis=1)
    return ProbeResult(top1=topk_accuracy(proba, y_test, 1), top5=topk_accuracy(proba, y_test, 5), c=c,
                       cv_scores=cv_scores, classes=classes, y_true=y_test, y_pred=y_pred)


def evaluate_linear(runs: list[Run], modality: str, cs=DEFAULT_CS, cv: int = 5, seed: int = 0) -> dict:
    """Probe every run; `top1`/`top5` are the means over runs, `runs` the per-run numbers.

    Test rows of a class absent from training count as errors: each run lists those classes in
    `unseen_test_classes` and `warnings` says so. The returned dict also holds `_confusion` (classes,
    y_true, y_pred of the first run) for reports.
    """
    per_run, first, warnings = [], None, []
    for run in runs:
        f = run.features
        x = f.matrix(modality)
        result = linear_probe(x[run.train], f.label[run.train], x[run.test], f.label[run.test],
                              f.groups()[run.train], cs, cv, seed)
        log.info("%s: top1 %.4f top5 %.4f (C=%g)", run.name, result.top1, result.top5, result.c)
        unseen = unseen_classes(f.label[run.test], result.classes)
        per_run.append({"name": run.name, "top1": result.top1, "top5": result.top5, "c": result.c,
                        "n_train": int(len(run.train)), "n_test": int(len(run.test)),
                        "n_classes": len(result.classes),
                        "cv_top1": {f"{c:g}": s for c, s in result.cv_scores.items()},
                        "unseen_test_classes": unseen})
        warnings += unseen_warning(run, unseen, f.label[run.test])
        first = first or result
    return {
        "top1": float(np.mean([r["top1"] for r in per_run])),
        "top5": float(np.mean([r["top5"] for r in per_run])),
        "n_classes": max(r["n_classes"] for r in per_run),  # chance of top-k: k / n_classes
        "runs": per_run,
        "warnings": warnings,
        "_confusion": {"classes": first.classes, "y_true": first.y_true, "y_pred": first.y_pred},
    }

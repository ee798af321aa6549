"""Cosine kNN classifier (non-parametric): weighted or majority vote of the k nearest rows. Plain numpy.

Weighted voting follows the instance-discrimination kNN monitor of the self-supervised literature
(Wu et al. 2018; used by MoCo, DINO): a neighbour with cosine similarity s adds exp(s / temperature)
to its class. Majority voting adds 1. Classes are ranked by their vote; a tie goes to the class whose
best neighbour is more similar (then to the lower class index), so results never depend on luck.
Neighbours are the k most similar rows (a tie at the k-th place keeps the lower row index).

Two entry points: `knn_class_scores` (rows of a gallery vote for queries) and
`leave_one_out_class_scores` (every row of one set is voted for by the k nearest other rows).
"""

from __future__ import annotations

import numpy as np

from avssl.errors import UsageError

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


def _check_vote(k: int, weighting: str, temperature: float) -> None:
    if weighting not in WEIGHTINGS:
        raise UsageError(f"kNN weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if k < 1:
        raise UsageError(f"kNN k must be >= 1, got {k}")
    if temperature <= 0:
        raise UsageError(f"kNN temperature must be > 0, got {temperature}")


def _vote(sim: np.ndarray, train_y: np.ndarray, n_classes: int, k: int, weighting: str,
          temperature: float) -> np.ndarray:
    """Class ranking keys [m, C] of the queries whose similarities to the voters are sim [m, N]."""
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
    return keys


def knn_class_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int,
                     k: int = 20, weighting: str = "weighted", temperature: float = 0.07) -> np.ndarray:
    """Class ranking keys [M, C] for test_x [M, D] from train_x [N, D] with int labels train_y [N].

    The result orders classes exactly as the vote with its tie rule: larger is better, and argsort of
    its negation (stable) gives the ranked classes. k larger than N is clamped to N.
    """
    _check_vote(k, weighting, temperature)
    k = min(k, len(train_x))
    train_n = l2_normalise(train_x)
    out = np.empty((len(test_x), n_classes), dtype=np.float64)
    for start in range(0, len(test_x), CHUNK):
        sim = l2_normalise(test_x[start:start + CHUNK]) @ train_n.T
        out[start:start + len(sim)] = _vote(sim, train_y, n_classes, k, weighting, temperature)
    return out


def leave_one_out_class_scores(x: np.ndarray, y: np.ndarray, n_classes: int, k: int = 20,
                               weighting: str = "weighted", temperature: float = 0.07) -> np.ndarray:
    """Class ranking keys [N, C] of every row of x [N, D] (int labels y [N]) voted for by its k nearest
    OTHER rows: a row never votes for itself. k larger than N - 1 is clamped to N - 1 (then every row
    is voted for by all the others). Keys as knn_class_scores: argmax is the predicted class."""
    _check_vote(k, weighting, temperature)
    if len(x) < 2:
        raise UsageError(f"leave-one-out kNN needs at least 2 rows, got {len(x)}")
    k = min(k, len(x) - 1)
    x_n = l2_normalise(x)
    out = np.empty((len(x), n_classes), dtype=np.float64)
    for start in range(0, len(x), CHUNK):
        sim = x_n[start:start + CHUNK] @ x_n.T
        rows = np.arange(len(sim))
        sim[rows, start + rows] = -np.inf  # itself: last in the ranking, never among the k <= N - 1
        out[start:start + len(sim)] = _vote(sim, y, n_classes, k, weighting, temperature)
    return out

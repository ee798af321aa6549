"""The cosine kNN classifier: gallery votes and leave-one-out votes against brute-force loops and a
hand-counted example, and its tie rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avssl.errors import UsageError
from avssl.models.knn import knn_class_scores, leave_one_out_class_scores


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _brute_knn_ranking(train_x, train_y, query, n_classes, k, weighting, temperature):
    sims = [(_cos(query, t), j) for j, t in enumerate(train_x)]
    nearest = sorted(sims, key=lambda p: (-p[0], p[1]))[:k]
    votes, best = [0.0] * n_classes, [-math.inf] * n_classes
    for s, j in nearest:
        c = train_y[j]
        votes[c] += math.exp(s / temperature) if weighting == "weighted" else 1.0
        best[c] = max(best[c], s)
    return sorted(range(n_classes), key=lambda c: (-votes[c], -best[c], c))


@pytest.mark.parametrize("weighting,k", [("weighted", 7), ("majority", 5), ("majority", 1)])
def test_knn_ranking_equals_a_loop_over_neighbours(weighting, k):
    rng = np.random.default_rng(4)
    train_x, test_x = rng.normal(size=(60, 8)), rng.normal(size=(25, 8))
    train_y = rng.integers(0, 6, 60)
    keys = knn_class_scores(train_x, train_y, test_x, 6, k=k, weighting=weighting, temperature=0.1)
    for q in range(len(test_x)):
        expected = _brute_knn_ranking(train_x, train_y, test_x[q], 6, k, weighting, 0.1)
        assert np.argsort(-keys[q], kind="stable").tolist() == expected


def test_majority_tie_goes_to_the_class_with_the_closest_neighbour():
    # 2 votes each: class 0 has the single closest neighbour, class 1 the larger similarity sum
    train = np.array([[1.0, 0.1], [-1.0, 0.0], [1.0, 0.2], [1.0, 0.25]])
    keys = knn_class_scores(train, np.array([0, 0, 1, 1]), np.array([[1.0, 0.0]]), 2, k=4, weighting="majority")
    assert np.argsort(-keys[0]).tolist() == [0, 1]
    weighted = knn_class_scores(train, np.array([0, 0, 1, 1]), np.array([[1.0, 0.0]]), 2, k=4)
    assert np.argsort(-weighted[0]).tolist() == [1, 0]  # exp(0.981/T) + exp(0.970/T) > exp(0.995/T) + exp(-1/T)


def _circle(degrees):
    angles = np.radians(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


# directions on the unit circle: 0, 10, 20 degrees (class 0); 90, 100 and 25 degrees (class 1)
HAND_X = _circle([0.0, 10.0, 20.0, 90.0, 100.0, 25.0])
HAND_Y = np.array([0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize("k,predicted", [
    # nearest other: 0->10, 10->0 (0 and 20 tie: the lower row), 20->25, 90->100, 100->90, 25->20
    (1, [0, 0, 1, 1, 1, 0]),
    # 2 nearest others: 20 -> {25: class 1, 10: class 0} is a 1:1 tie, won by 25, the closer one
    (2, [0, 0, 1, 1, 1, 0]),
    # 0:{10,20,25} 0,0,1; 10:{0,20,25} 0,0,1; 20:{25,10,0} 1,0,0; 90:{100,25,20} 1,1,0;
    # 100:{90,25,20} 1,1,0; 25:{20,10,0} 0,0,0
    (3, [0, 0, 0, 1, 1, 0]),
    # all 5 others vote: a class-0 row sees 2 of class 0 and 3 of class 1, a class-1 row 3 and 2
    (5, [1, 1, 1, 0, 0, 0]),
    (50, [1, 1, 1, 0, 0, 0]),  # clamped to the 5 others
])
def test_leave_one_out_majority_vote_against_hand_counts(k, predicted):
    keys = leave_one_out_class_scores(HAND_X, HAND_Y, 2, k=k, weighting="majority")
    assert keys.argmax(axis=1).tolist() == predicted


@pytest.mark.parametrize("weighting,k", [("weighted", 4), ("majority", 3), ("majority", 1)])
def test_leave_one_out_equals_voting_by_the_set_without_the_row(weighting, k):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(40, 5)), rng.integers(0, 4, 40)
    keys = leave_one_out_class_scores(x, y, 4, k=k, weighting=weighting, temperature=0.2)
    for i in range(len(x)):
        others = np.arange(len(x)) != i
        alone = knn_class_scores(x[others], y[others], x[i:i + 1], 4, k=k, weighting=weighting, temperature=0.2)
        np.testing.assert_array_equal(keys[i], alone[0])


def test_leave_one_out_ignores_a_duplicate_of_itself_only_as_itself():
    # row 1 duplicates row 0: each is the other's nearest neighbour, never its own
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    keys = leave_one_out_class_scores(x, np.array([0, 1, 1, 1]), 2, k=1, weighting="majority")
    assert keys.argmax(axis=1).tolist() == [1, 0, 1, 1]


def test_arguments_are_checked():
    with pytest.raises(UsageError, match="at least 2 rows"):
        leave_one_out_class_scores(HAND_X[:1], HAND_Y[:1], 2, k=1)
    with pytest.raises(UsageError, match="k must be >= 1"):
        leave_one_out_class_scores(HAND_X, HAND_Y, 2, k=0)
    with pytest.raises(UsageError, match="weighting"):
        knn_class_scores(HAND_X, HAND_Y, HAND_X, 2, weighting="vote")

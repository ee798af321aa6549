"""kNN and retrieval against brute-force loops over pairs on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avssl.evaluate.features import Features
from avssl.evaluate.knn import knn_class_scores
from avssl.evaluate.retrieval import evaluate_cross_modal, recall_at_k, relevance_ranks


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


def _brute_ranks(q, g, qk, gk):
    ranks = []
    for i in range(len(q)):
        sims = [_cos(q[i], g[j]) for j in range(len(g))]
        relevant = [s for s, key in zip(sims, gk) if key == qk[i]]
        if not relevant:
            ranks.append(math.inf)
            continue
        ranks.append(1 + sum(s > max(relevant) for s in sims))
    return np.array(ranks, dtype=float)


def test_recall_at_k_equals_a_loop_over_pairs():
    rng = np.random.default_rng(5)
    q, g = rng.normal(size=(40, 6)), rng.normal(size=(90, 6))
    qk, gk = rng.integers(0, 12, 40).astype(str), rng.integers(0, 10, 90).astype(str)  # classes 10, 11 absent
    ranks = relevance_ranks(q, g, qk, gk)
    np.testing.assert_array_equal(ranks, _brute_ranks(q, g, qk, gk))
    assert np.isinf(ranks).any()
    for k in (1, 5, 10, 20, 50):
        hits = sum(any(gk[j] == qk[i] for j in np.argsort([-_cos(q[i], x) for x in g], kind="stable")[:k])
                   for i in range(len(q)))
        assert recall_at_k(ranks, [k])[f"recall@{k}"] == pytest.approx(hits / len(q))


def test_cross_modal_ranks_and_median_against_brute_force():
    rng = np.random.default_rng(6)
    n = 30
    video = rng.normal(size=(n, 8))
    audio = 0.8 * video + rng.normal(size=(n, 8))  # paired, so retrieval is well above chance
    paths = np.array([f"/v/{i}.mp4" for i in range(n)])
    f = Features(path=paths, label=np.array(["x"] * n), split=np.array(["test"] * n),
                 group=np.array([f"g{i // 2}" for i in range(n)]), video=video, audio=audio)
    out = evaluate_cross_modal(f, ks=(1, 5))
    a2v = _brute_ranks(audio, video, paths, paths)
    v2a = _brute_ranks(video, audio, paths, paths)
    assert out["a2v_recall@1"] == pytest.approx(np.mean(a2v <= 1))
    assert out["v2a_recall@5"] == pytest.approx(np.mean(v2a <= 5))
    assert out["a2v_median_rank"] == np.median(a2v)
    assert out["median_rank"] == pytest.approx((np.median(a2v) + np.median(v2a)) / 2)
    assert out["recall@1"] == pytest.approx((np.mean(a2v <= 1) + np.mean(v2a <= 1)) / 2)
    assert out["a2v_recall@5"] > 5 / n
    by_group = evaluate_cross_modal(f, ks=(1,), match="group")
    groups = f.groups()
    assert by_group["a2v_median_rank"] == np.median(_brute_ranks(audio, video, groups, groups))

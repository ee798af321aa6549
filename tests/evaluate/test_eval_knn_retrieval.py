"""The kNN protocol runs, and retrieval against brute-force loops over pairs on random data (the kNN
classifier itself: tests/models/test_knn.py)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from avssl.errors import UsageError
from avssl.evaluate.features import Features
from avssl.evaluate.knn import evaluate_knn
from avssl.evaluate.protocols import Run
from avssl.evaluate.retrieval import evaluate_cross_modal, recall_at_k, relevance_ranks


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_evaluate_knn_scores_each_run_with_its_own_classes_and_averages():
    # two tight clusters "a" (x axis) and "b" (y axis); the last row's class "c" is unseen in training
    video = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [1.0, 0.05], [0.05, 1.0], [1.0, 1.0]])
    n = len(video)
    f = Features(path=np.array([f"/v/{i}.mp4" for i in range(n)]), label=np.array(list("aabbabc")),
                 split=np.array(["train"] * 4 + ["test"] * 3), group=np.array([""] * n), video=video)
    runs = [Run("s1", f, np.arange(4), np.array([4, 5, 6])), Run("s2", f, np.arange(4), np.array([4, 5]))]
    out = evaluate_knn(runs, "video", k=1, weighting="majority")
    assert [r["top1"] for r in out["runs"]] == pytest.approx([2 / 3, 1.0])
    assert out["top1"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert out["runs"][0]["top5"] == pytest.approx(2 / 3)  # "c" is a miss at every k
    assert out["_confusion"]["classes"] == ["a", "b"] and out["_confusion"]["y_true"].tolist() == [0, 1, -1]


def _brute_ranks(q, g, qk, gk):
    ranks = []
    for i in range(len(q)):
        sims = [_cos(q[i], g[j]) for j in range(len(g))]
        relevant = [s for s, key in zip(sims, gk) if key == qk[i]]
        if not relevant:
            ranks.append(math.inf)
            continue
        ranks.append(1 + sum(s >= max(relevant) for s, key in zip(sims, gk) if key != qk[i]))
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


def test_leaving_out_the_query_own_clip_finds_the_class_in_other_clips_only():
    """Each clip's audio equals its own video (instance match, rank 1 by path) while the videos of a
    class are otherwise unrelated: "label" retrieval scores 1.0 through the own clip, and with it left
    out the ranks are those of a gallery without it (brute force over the other clips)."""
    rng = np.random.default_rng(7)
    n = 24
    video = rng.normal(size=(n, 8))
    audio = video.copy()
    paths = np.array([f"/v/{i}.mp4" for i in range(n)])
    labels = np.array([f"c{i % 4}" for i in range(n)])
    f = Features(path=paths, label=labels, split=np.array(["test"] * n), group=paths.copy(), video=video, audio=audio)
    assert evaluate_cross_modal(f, ks=(1,), match="label")["recall@1"] == 1.0
    out = evaluate_cross_modal(f, ks=(1, 5), match="label", leave_out_own=True)
    others = [np.delete(np.arange(n), i) for i in range(n)]
    a2v = np.array([_brute_ranks(audio[i:i + 1], video[o], labels[i:i + 1], labels[o])[0] for i, o in enumerate(others)])
    assert out["a2v_median_rank"] == np.median(a2v) and out["a2v_recall@5"] == pytest.approx(np.mean(a2v <= 5))
    assert out["recall@1"] < 0.6
    with pytest.raises(UsageError, match="own clip left out has no hit"):
        evaluate_cross_modal(f, match="path", leave_out_own=True)


def test_ties_go_against_the_query_so_a_collapsed_gallery_scores_no_hits(caplog):
    """Every video embedding the same vector (an encoder that collapsed): each audio query ties with
    all 20 videos, so its rank is 1 + the 15 of other classes, not 1."""
    rng = np.random.default_rng(8)
    n = 20
    video = np.tile(rng.normal(size=(1, 8)), (n, 1))
    audio = rng.normal(size=(n, 8))
    labels = np.array([f"c{i % 4}" for i in range(n)])
    ranks = relevance_ranks(audio, video, labels, labels)
    np.testing.assert_array_equal(ranks, np.full(n, 16.0))
    f = Features(path=np.array([f"/v/{i}.mp4" for i in range(n)]), label=labels, split=np.array(["test"] * n),
                 group=labels.copy(), video=video, audio=audio)
    with caplog.at_level(logging.WARNING, logger="avssl.evaluate.retrieval"):
        out = evaluate_cross_modal(f, ks=(1, 5), match="label")
    assert out["a2v_recall@5"] == 0.0 and (out["n_repeated_audio_rows"], out["n_repeated_video_rows"]) == (0, n - 1)
    assert "19 of 20 video embeddings repeat another row exactly" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avssl.evaluate.retrieval"):
        again = evaluate_cross_modal(f, ks=(1,), match="path", warn_repeated=False)
    assert again["n_repeated_video_rows"] == n - 1 and "repeat another row" not in caplog.text

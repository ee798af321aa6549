"""Fingerprinting: micro AP against scikit-learn and the VSC 2022 formula; recall@1; the driver."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from avssl.errors import UsageError
from avssl.evaluate.features import Features
from avssl.evaluate.fingerprint import (
    Reference,
    evaluate_fingerprinting,
    fingerprint_metrics,
    fingerprint_metrics_from_features,
    micro_average_precision,
)
from avssl.evaluate.query_transforms import AVClip, blur, brightness


def _vsc_average_precision(scores, is_true, n_true):
    """The VSC 2022 loop (vsc/metrics.py average_precision) for distinct scores."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    correct = seen = 0
    total = 0.0
    for i in order:
        seen += 1
        if is_true[i]:
            correct += 1
            total += correct / seen
    return total / n_true


def test_micro_ap_equals_sklearn_on_all_pairs_and_vsc_loop():
    rng = np.random.default_rng(0)
    ref_x, query_x = rng.normal(size=(15, 8)), rng.normal(size=(40, 8))
    ref_ids = np.array([f"r{i}" for i in range(15)])
    true = ref_ids[rng.integers(0, 15, 40)]
    query_x[:20] += 1.5 * ref_x[[int(t[1:]) for t in true[:20]]]  # half the queries resemble their reference
    out = fingerprint_metrics(ref_x, ref_ids, query_x, true)
    sim = (query_x / np.linalg.norm(query_x, axis=1, keepdims=True)) @ (ref_x / np.linalg.norm(ref_x, axis=1, keepdims=True)).T
    truth = true[:, None] == ref_ids[None, :]
    assert out["map"] == pytest.approx(average_precision_score(truth.ravel(), sim.ravel()), abs=1e-12)
    assert out["map"] == pytest.approx(_vsc_average_precision(sim.ravel(), truth.ravel(), 40), abs=1e-12)
    assert out["recall@1"] == pytest.approx(np.mean([ref_ids[np.argmax(sim[q])] == true[q] for q in range(40)]))
    assert 0.2 < out["map"] < 1.0


def test_micro_ap_by_hand_with_a_missed_true_pair_and_ties():
    # ranking: T F T ; a 4th true pair never retrieved -> (1/1 + 2/3) / 4
    assert micro_average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 4) == pytest.approx(
        (1 + 2 / 3) / 4)
    # a tie block [T, F] at the top counts precision 1/2 for its hit whatever the input order
    for scores, truth in (([0.5, 0.5, 0.1], [True, False, True]), ([0.5, 0.5, 0.1], [False, True, True])):
        assert micro_average_precision(np.array(scores), np.array(truth), 2) == pytest.approx((1 / 2 + 2 / 3) / 2)
    with pytest.raises(UsageError, match="at least one true"):
        micro_average_precision(np.array([0.1]), np.array([False]), 0)


def test_candidates_per_query_keeps_unretrieved_true_pairs_in_the_denominator():
    rng = np.random.default_rng(1)
    ref_x, query_x = rng.normal(size=(10, 4)), rng.normal(size=(12, 4))
    ref_ids = np.array([f"r{i}" for i in range(10)])
    true = np.array(list(ref_ids[:10]) + ["", ""])  # two distractor queries without a reference
    full = fingerprint_metrics(ref_x, ref_ids, query_x, true)
    top1 = fingerprint_metrics(ref_x, ref_ids, query_x, true, candidates_per_query=1)
    sim = (query_x / np.linalg.norm(query_x, axis=1, keepdims=True)) @ (ref_x / np.linalg.norm(ref_x, axis=1, keepdims=True)).T
    best = sim.argmax(axis=1)
    scores, hits = sim[np.arange(12), best], ref_ids[best] == true
    assert top1["map"] == pytest.approx(_vsc_average_precision(scores, hits, 10))
    assert full["n_true_pairs"] == top1["n_true_pairs"] == 10
    assert top1["recall@1"] == full["recall@1"] == pytest.approx(hits[:10].mean())
    with pytest.raises(UsageError, match="not among the references, e.g. 'r99'"):
        fingerprint_metrics(ref_x, ref_ids, query_x, np.array(["r99"] * 12))


def test_per_transform_metrics_use_only_that_transforms_queries():
    rng = np.random.default_rng(2)
    ref_x = rng.normal(size=(6, 5))
    ref_ids = np.array([f"r{i}" for i in range(6)])
    easy, hard = ref_x + 0.01 * rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    out = fingerprint_metrics(ref_x, ref_ids, np.vstack([easy, hard]), np.r_[ref_ids, ref_ids],
                              np.array(["easy"] * 6 + ["hard"] * 6))
    assert out["by_transform"]["easy"]["map"] == 1.0 and out["by_transform"]["easy"]["recall@1"] == 1.0
    alone = fingerprint_metrics(ref_x, ref_ids, hard, ref_ids)
    assert out["by_transform"]["hard"]["map"] == pytest.approx(alone["map"])
    assert out["by_transform"]["hard"]["n_queries"] == 6


def test_features_file_layout_for_fingerprints():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 4))
    x[3:6] = x[0:3] + 0.001
    f = Features(path=np.array([f"p{i}" for i in range(7)]), label=np.array(["", "", "", "blur", "blur", "crop", "crop"]),
                 split=np.array(["reference"] * 3 + ["query"] * 4), group=np.array(["a", "b", "c", "a", "b", "c", ""]),
                 video=x)
    out = fingerprint_metrics_from_features(f, "video")
    assert out["recall@1"] == 1.0 and out["n_true_pairs"] == 3 and out["by_transform"]["crop"]["n_queries"] == 2


def _clip(seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(8, 4, 4, 3)).astype(np.float32)
    video = torch.from_numpy(np.kron(small, np.ones((1, 8, 8, 1))).astype(np.uint8))  # [8, 32, 32, 3] blocks
    audio = torch.from_numpy(rng.normal(0, 0.1, 8000).astype(np.float32))
    return AVClip(video=video, audio=audio, fps=16.0, sample_rate=16000)


def test_driver_embeds_references_and_every_transform_query():
    calls = []

    def embed(video, audio):  # a 4x4 colour thumbnail averaged over time: robust to blur and brightness
        calls.append(tuple(video.shape))
        thumb = video.float().reshape(video.shape[0], 4, 8, 4, 8, 3).mean(dim=(0, 2, 4))
        return (thumb - thumb.mean()).reshape(-1)

    refs = [Reference(f"r{i}", _clip(i)) for i in range(5)]
    out = evaluate_fingerprinting(embed, refs, {"blur": blur, "brightness": brightness}, seed=0)
    assert len(calls) == 5 * 3 and set(calls) == {(8, 32, 32, 3)}
    assert out["n_queries"] == 10 and set(out["by_transform"]) == {"blur", "brightness"}
    assert out["recall@1"] == 1.0 and out["map"] > 0.9

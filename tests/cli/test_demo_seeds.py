"""`avssl demo --seeds N`: each method's numbers as mean and spread over seeds; counts stay integers."""

from __future__ import annotations

import json

import pytest

from avssl.demo.seeds import aggregate_method, mean_and_std


def _seed(top1, rank, better):
    values = {"ucf_video_linear": {"top1": top1, "top5": 0.5, "n_classes": 12},
              "esc_audio_linear": {"top1": 1.0, "top5": 1.0, "n_classes": 6},
              "cross_modal_retrieval": {"median_rank": rank, "recall@1": 0.0, "recall@5": 0.0, "a2v_median_rank": rank,
                                        "v2a_median_rank": rank, "n_queries": 192}}
    random = json.loads(json.dumps(values))
    random["ucf_video_linear"]["top1"] = 0.1
    rows = [{"evaluation": "ucf_video_linear", "metric": "top1", "pretrained_better": better}]
    return {"config": "avts-tiny", "steps": 300, "checkpoint": "c", "train_seconds": 2.0, "pretrained": values, "random": random,
            "comparison": rows + [{"evaluation": e, "metric": m, "pretrained_better": False}
                                  for e, ms in (("ucf_video_linear", ["top5"]), ("esc_audio_linear", ["top1", "top5"]),
                                                ("cross_modal_retrieval", ["median_rank", "recall@1", "recall@5",
                                                                           "a2v_median_rank", "v2a_median_rank"]))
                                  for m in ms],
            "loss_terms": [], "chance": {}, "loss": {"train/loss": {"start": 1.0, "end": 0.5}}, "provenance": {}}


def test_mean_and_std_keep_counts_integer():
    means, stds = mean_and_std([{"a": {"n": 3, "x": 1.0}}, {"a": {"n": 3, "x": 2.0}}])
    assert means == {"a": {"n": 3, "x": 1.5}} and isinstance(means["a"]["n"], int)
    assert stds == {"a": {"n": 0, "x": 0.5}}


def test_aggregate_gives_mean_std_n_and_seeds_won():
    out = aggregate_method([_seed(0.2, 90.0, True), _seed(0.4, 80.0, False), _seed(0.3, 70.0, True)], [0, 1, 2])
    row = next(r for r in out["comparison"] if (r["evaluation"], r["metric"]) == ("ucf_video_linear", "top1"))
    assert row["pretrained"] == pytest.approx(0.3) and row["pretrained_std"] == pytest.approx(0.0816, abs=1e-4)
    assert row["random"] == pytest.approx(0.1) and row["random_std"] == pytest.approx(0) and row["n"] == 3
    assert row["better_in_seeds"] == 2 and row["pretrained_better"] and row["chance"] == pytest.approx(1 / 12)
    assert out["pretrained"]["cross_modal_retrieval"]["n_queries"] == 192
    text = json.dumps(out)  # pretrained and random, of the mean and of each seed: integers
    assert text.count('"n_queries": 192') == 8 and '192.0' not in text
    assert [s["seed"] for s in out["per_seed"]] == [0, 1, 2] and out["seeds"] == [0, 1, 2]
    assert out["steps"] == 300 and "steps" not in out["per_seed"][0]  # the method's, once

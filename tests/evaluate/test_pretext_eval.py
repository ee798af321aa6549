"""Held-out pretext accuracy of temporal-av: chance levels, sample count, determinism, and a head
that was made to know the answer scores 1."""

from __future__ import annotations

import pytest
import torch

from avssl.config.bundled import resolve_config_path
from avssl.data.dataset import usable_table
from avssl.data.discovery import discover_media
from avssl.data.probing import build_manifest, probe_paths
from avssl.evaluate.pretext import chance_levels, pretext_accuracy
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class


@pytest.fixture(scope="module")
def setup(tiny_world):
    paths = discover_media([str(tiny_world / "clips")])
    table, _ = usable_table(build_manifest(paths, probe_paths(paths, workers=0, progress=False)))
    config = load_config(resolve_config_path("temporal-av-tiny"), ["data.batch_size=2"])
    torch.manual_seed(0)
    return method_class("temporal-av")(config), table


def test_chance_levels_of_the_tiny_config(setup):
    method, _ = setup
    # 3 sub-clips: 3! = 6 orders; av order before / at / after
    assert chance_levels(method) == pytest.approx({"video_direction": 0.5, "audio_direction": 0.5,
                                                   "video_order": 1 / 6, "audio_order": 1 / 6, "av_order": 1 / 3,
                                                   "mean": (0.5 + 0.5 + 1 / 6 + 1 / 6 + 1 / 3) / 5})


def test_counts_samples_repeats_and_restores_mode(setup):
    method, table = setup
    method.train()
    first = pretext_accuracy(method, table, samples=8)
    assert method.training
    assert first["n_samples"] == 8.0  # 3 files, batches of 2: 1 batch per epoch, 8 epochs
    heads = ("video_direction", "audio_direction", "video_order", "audio_order", "av_order")
    assert all(0.0 <= first[k] <= 1.0 for k in heads)
    assert first["mean"] == pytest.approx(sum(first[k] for k in heads) / 5)
    assert pretext_accuracy(method, table, samples=8) == first


def test_a_head_that_reads_the_label_scores_one(setup, monkeypatch):
    method, table = setup
    encode, pretext_logits = method.encode, method.pretext_logits
    current = {}

    def encode_and_keep(batch):
        current["batch"] = batch
        return encode(batch)

    def audio_direction_knows(out):
        logits = pretext_logits(out)
        logits["audio_direction"] = torch.nn.functional.one_hot(current["batch"]["direction"], 2).float()
        return logits

    monkeypatch.setattr(method, "encode", encode_and_keep)
    monkeypatch.setattr(method, "pretext_logits", audio_direction_knows)
    result = pretext_accuracy(method, table, samples=4)
    assert result["audio_direction"] == 1.0
    assert result["mean"] == pytest.approx((1.0 + result["video_direction"] + result["video_order"]
                                            + result["audio_order"] + result["av_order"]) / 5)

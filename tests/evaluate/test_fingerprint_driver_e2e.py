"""`avssl eval fingerprint`: decode references, transform, embed with a model, micro AP / recall@1."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from avssl import cli
from avssl.data.manifest import Manifest
from avssl.errors import UsageError
from avssl.evaluate.fingerprint_driver import Embedder, run_fingerprint, select_transforms
from avssl.evaluate.model_loading import load_model


@pytest.fixture(autouse=True)
def verbs(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "eval", ("evaluate", "evaluate"))


@pytest.fixture(scope="module")
def three_videos(tiny_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fingerprint")
    full = folder / "all.csv"
    assert cli.main(["probe", str(tiny_world / "ucf"), "--dataset", "ucf101", "--split", "1", "--out", str(full)]) == 0
    out = folder / "three.csv"
    Manifest.load(full).take(np.array([0, 7, 14])).save(out)
    return out


def test_embedder_gives_unit_vectors_for_any_length():
    model = load_model("random:avts-tiny")
    embed = Embedder(model.method, model.config)
    video = torch.randint(0, 255, (11, 48, 64, 3), dtype=torch.uint8)
    for frames, samples in ((11, 16000), (7, 10667)):
        x = embed(video[:frames], torch.randn(samples) * 0.1)
        assert x.shape == (256,) and math.isclose(float(np.linalg.norm(x)), 1.0, rel_tol=1e-5)


def test_fingerprint_end_to_end_gives_finite_metrics(three_videos, capsys):
    code = cli.main(["eval", "fingerprint", "--checkpoint", "random:avts-tiny", "--data", str(three_videos),
                     "--transforms", "crop,speed,reencode,audio_noise"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert result["n_references"] == 3 and result["n_queries"] == 12
    assert set(result["by_transform"]) == {"crop", "speed", "reencode", "audio_noise"}
    for block in [result, *result["by_transform"].values()]:
        assert 0.0 <= block["map"] <= 1.0 and 0.0 <= block["recall@1"] <= 1.0
    assert result["provenance"]["inputs"][0]["sha256"]


def test_identity_queries_are_found_perfectly(three_videos):
    model = load_model("random:avts-tiny")
    # a query identical to its reference scores cosine 1 with it: a perfect ranking
    from avssl.evaluate import fingerprint_driver

    identity = {"identity": lambda clip, rng: clip}
    original = fingerprint_driver.select_transforms
    try:
        fingerprint_driver.select_transforms = lambda names: identity
        perfect = run_fingerprint(model.method, model.config, Manifest.load(three_videos))
    finally:
        fingerprint_driver.select_transforms = original
    assert perfect["map"] == pytest.approx(1.0) and perfect["recall@1"] == 1.0


def test_unknown_transform_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown 'rotate'"):
        select_transforms(["crop", "rotate"])

"""`avssl finetune`: a few steps of full fine-tuning on the tiny UCF-style split, clip-averaged top-1
(the run folders, resume and DDP are tests/train/test_finetune_engine.py's)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avssl import cli
from avssl.config.finetune import FinetuneSection
from avssl.data.manifest import Manifest
from avssl.data.recipes.finetune import LabelledTable
from avssl.evaluate.finetune import clip_averaged_accuracy
from avssl.evaluate.model_loading import load_model
from avssl.methods.finetune import build_classifier
from avssl.train.checkpoint_io import safe_load


@pytest.fixture(autouse=True)
def verbs(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "finetune", ("finetune", "fine-tune"))


@pytest.fixture(scope="module")
def ucf_manifest(tiny_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune")
    full = folder / "ucf1.csv"
    assert cli.main(["probe", str(tiny_world / "ucf"), "--dataset", "ucf101", "--split", "1", "--out", str(full)]) == 0
    manifest = Manifest.load(full)
    split = manifest.strings("split")
    # a small subset keeps the test fast: 6 training files, 3 test files
    rows = np.r_[np.flatnonzero(split == "train")[::4][:6], np.flatnonzero(split == "test")[::4][:3]]
    out = folder / "small.csv"
    manifest.take(rows).save(out)
    return out


def test_finetune_cli_reports_top1_and_trains_every_weight(ucf_manifest, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["finetune", "--checkpoint", "random:avts-tiny", "--data", str(ucf_manifest), "--out", str(out),
                     "--device", "cpu", "max_steps=2", "batch_size=3", "num_workers=0", "clips_per_video=2"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    manifest = Manifest.load(ucf_manifest)
    n_test = int((manifest.strings("split") == "test").sum())
    split = result["splits"][0]
    assert 0.0 <= result["top1"] <= 1.0 and result["top1"] == split["top1"]
    assert split["n_test"] == n_test and split["model"] == "video" and result["mode"] == "full"
    assert round(split["top1"] * n_test) == pytest.approx(split["top1"] * n_test)  # a share of whole files
    assert json.loads((out / "results.json").read_text())["top1"] == result["top1"]
    saved = safe_load(out / "split1" / "checkpoints" / "last.ckpt")["state_dict"]
    initial = load_model("random:avts-tiny").method.video_encoder.state_dict()
    changed = [k for k, v in initial.items() if v.dtype.is_floating_point
               and not torch.equal(v, saved[f"video_encoder.{k}"])]
    assert len(changed) > len(initial) // 2  # full fine-tuning: the encoder moved, not just the head


def test_test_time_aggregation_averages_clip_logits(ucf_manifest):
    model = load_model("random:avts-tiny")
    manifest = Manifest.load(ucf_manifest)
    index = manifest.label_index()
    test = LabelledTable.from_manifest(manifest.filter(None, split="test"), index)
    classifier = build_classifier(model.config, FinetuneSection(), len(index), list(index))
    seen = []
    original = classifier.predict_logits

    def spy(video, audio, present):
        out = original(video, audio, present)
        seen.append((video.shape[0], out))
        return out

    classifier.predict_logits = spy
    result = clip_averaged_accuracy(classifier, test, model.config, clips=2, device="cpu")
    assert [n for n, _ in seen] == [2] * len(test)
    want = np.mean([int(out.mean(dim=0).argmax()) == int(y) for (_, out), y in zip(seen, test.labels)])
    assert result["top1"] == pytest.approx(want) and result["n_test"] == len(test)

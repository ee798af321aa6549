"""Evaluation answers that would be wrong without a word: test classes absent from training are listed
in the JSON (`unseen_test_classes`, `warnings`), files that do not say which model they come from are
flagged, and retrieval over a single key refuses to report recall 1.0."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avssl.cli import main
from avssl.errors import UsageError
from avssl.evaluate.features import load_features, save_features
from avssl.evaluate.retrieval import evaluate_cross_modal, recall_at_k


def write(path, labels, split, x, model="m", audio=None):
    n = len(labels)
    save_features(path, path_column=[f"/v{i}.mp4" for i in range(n)], label=labels, split=split,
                  group=[f"g{i}" for i in range(n)], video=x, audio=audio, model=model)
    return str(path)


def run_json(argv, capsys) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("task", ["linear", "knn"])
def test_test_classes_absent_from_training_are_listed(task, tmp_path, capsys, make_clustered):
    labels = ["a", "b"] * 10 + ["a", "b", "c", "c"]
    split = ["train"] * 20 + ["test"] * 4
    path = write(tmp_path / "f.npz", labels, split, make_clustered(labels))
    extra = ["--cv", "2"] if task == "linear" else ["--k", "3"]
    result = run_json(["eval", task, path, *extra], capsys)
    assert result["runs"][0]["unseen_test_classes"] == ["c"]
    assert len(result["warnings"]) == 1 and "2 test row(s)" in result["warnings"][0] and "'c'" in result["warnings"][0]
    assert result["top1"] <= 0.5  # the two rows of c count as errors


def test_files_that_do_not_record_their_model_are_flagged(tmp_path, capsys, make_clustered):
    labels = ["a", "b"] * 8
    split = ["train"] * 12 + ["test"] * 4
    x = make_clustered(labels)
    one = write(tmp_path / "s1.npz", labels, split, x, model="")
    two = write(tmp_path / "s2.npz", labels, split[::-1], x, model="")
    result = run_json(["eval", "knn", one, two, "--k", "3"], capsys)
    assert any("does not record the model" in w for w in result["warnings"])
    assert load_features(one).model == ""
    same = run_json(["eval", "knn", write(tmp_path / "s3.npz", labels, split, x), "--k", "3"], capsys)
    assert same["warnings"] == []


def test_cross_modal_retrieval_over_one_key_is_refused(tmp_path, make_clustered):
    labels = ["a"] * 6
    x = make_clustered(labels)
    features = load_features(write(tmp_path / "f.npz", labels, ["test"] * 6, x, audio=x))
    with pytest.raises(UsageError, match="same --match label key"):
        evaluate_cross_modal(features, match="label")
    assert evaluate_cross_modal(features, ks=(1,), match="path")["recall@1"] == 1.0  # paths differ: a real task


def test_recall_at_0_is_refused():
    with pytest.raises(UsageError, match="--ks"):
        recall_at_k(np.array([1.0, 2.0]), ks=(0, 1))

"""`avssl eval ...` end to end on features files: JSON on stdout, --out, --report with PNGs, --seeds."""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest

from avssl import cli
from avssl.evaluate.features import file_sha256, save_features
from avssl.evaluate.report import run_seeds, write_report


@pytest.fixture(autouse=True)
def eval_verb(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "eval", ("evaluate", "evaluate features files"))


def _folds_file(path, make_clustered):
    labels = [f"class{i % 4}" for i in range(80)]
    x = make_clustered(labels, dim=8, spread=0.7, seed=2)
    audio = x + 0.3 * np.random.default_rng(9).normal(size=x.shape)
    return save_features(path, path_column=[f"/clips/{i:03d}.wav" for i in range(80)], label=labels,
                         split=[str(1 + (i // 4) % 5) for i in range(80)], group=[f"rec{i // 2}" for i in range(80)],
                         video=x, audio=audio.astype(np.float32))


def _run(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _metric_table(markdown):
    rows = dict(re.findall(r"^\| ([\w@/]+) \| ([^|]+) \|$", markdown, flags=re.M))
    rows.pop("metric")  # the header
    return rows


def test_linear_with_seeds_out_and_report(tmp_path, capsys, make_clustered):
    features = _folds_file(tmp_path / "esc.npz", make_clustered)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,train/loss,train/acc\n0,2.0,0.1\n10,1.5,\n20,1.1,0.4\n")
    report = tmp_path / "report"
    code, out, _ = _run(capsys, ["eval", "linear", features, "--modality", "audio", "--seeds", "0,1,2",
                                 "--cs", "0.1,1", "--cv", "3", "--out", str(tmp_path / "r.json"),
                                 "--report", str(report), "--metrics-csv", str(metrics)])
    assert code == 0
    result = json.loads(out)
    assert result == json.loads((tmp_path / "r.json").read_text())
    assert result["protocol"] == "folds" and result["seeds"] == [0, 1, 2] and len(result["per_seed"]) == 3
    per_seed = [r["top1"] for r in result["per_seed"]]
    assert result["top1"] == pytest.approx(np.mean(per_seed)) and result["top1_std"] == pytest.approx(np.std(per_seed))
    assert 0.5 < result["top1"] <= result["top5"] <= 1.0
    prov = result["provenance"]
    assert prov["inputs"][0]["sha256"] == file_sha256(features) and prov["seed"] == [0, 1, 2]
    assert prov["code_version"]["avssl"] == "0.1.0" and prov["config"]["cv"] == 3
    for png in ("confusion.png", "embedding.png", "curve_loss.png", "curve_accuracy.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (report / "report.md").read_text()
    assert "![confusion](confusion.png)" in markdown and "![loss](curve_loss.png)" in markdown
    assert "![accuracy](curve_accuracy.png)" in markdown and result["n_classes"] == 4
    table = _metric_table(markdown)
    assert set(table) >= {"top1", "top5"}
    for value in table.values():
        assert all(math.isfinite(float(v)) for v in value.split(" ± "))
    assert "| fold5 |" in markdown


def test_knn_and_class_retrieval_report_examples(tmp_path, capsys, make_clustered):
    features = _folds_file(tmp_path / "esc.npz", make_clustered)
    code, out, _ = _run(capsys, ["eval", "knn", features, "--k", "5", "--weighting", "majority"])
    knn = json.loads(out)
    assert code == 0 and knn["modality"] == "video" and [r["name"] for r in knn["runs"]][-1] == "fold5"
    code, out, _ = _run(capsys, ["eval", "retrieval", features, "--report", str(tmp_path / "rep")])
    result = json.loads(out)
    assert code == 0 and [k for k in result if k.startswith("recall@")] == [f"recall@{k}" for k in (1, 5, 10, 20, 50)]
    assert result["recall@1"] <= result["recall@5"] <= result["recall@50"] == 1.0
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert "## Retrieval examples" in markdown and "✓" in markdown
    assert "### video → video (test clips query the training clips)" in markdown


def _joint_file(path, make_clustered, space="embedding"):
    from avssl.evaluate.features import load_features

    f = load_features(_folds_file(path, make_clustered))
    return save_features(path, path_column=f.path, label=f.label, split=f.split, group=f.group, video=f.video,
                         audio=f.audio, space=space)


def test_cross_modal_and_fingerprint_metric(tmp_path, capsys, make_clustered):
    features = _joint_file(tmp_path / "joint.npz", make_clustered)
    code, out, _ = _run(capsys, ["eval", "retrieval", features, "--cross-modal", "--subset", "1", "--ks", "1,5",
                                 "--report", str(tmp_path / "xrep")])
    result = json.loads(out)
    assert code == 0 and result["n_queries"] == 16 and result["a2v_recall@5"] >= result["a2v_recall@1"]
    assert result["a2v_median_rank"] >= 1
    markdown = (tmp_path / "xrep" / "report.md").read_text()
    assert "### audio → video" in markdown and "### video → audio" in markdown
    rng = np.random.default_rng(0)
    refs = rng.normal(size=(5, 6))
    queries = np.vstack([refs + 0.05 * rng.normal(size=refs.shape), rng.normal(size=refs.shape)])
    fp = save_features(tmp_path / "fp.npz", path_column=[f"p{i}" for i in range(15)],
                       label=[""] * 5 + ["blur"] * 5 + ["noise"] * 5, split=["reference"] * 5 + ["query"] * 10,
                       group=[f"r{i % 5}" for i in range(15)], video=np.vstack([refs, queries]))
    code, out, _ = _run(capsys, ["eval", "fingerprint-metric", fp, "--report", str(tmp_path / "fprep")])
    result = json.loads(out)
    assert code == 0 and 0 < result["map"] <= 1 and result["by_transform"]["blur"]["recall@1"] == 1.0
    assert "## By transformation" in (tmp_path / "fprep" / "report.md").read_text()


def test_bad_usage_exits_2_naming_the_file(tmp_path, capsys):
    code, _, err = _run(capsys, ["eval", "linear", str(tmp_path / "nope.npz")])
    assert code == 2 and "nope.npz: features file not found" in err


def test_run_seeds_mean_and_std_and_report_with_nan(tmp_path):
    out = run_seeds(lambda s: {"top1": 0.5 + 0.1 * s, "n": 3, "protocol": "folds", "name": f"s{s}", "_confusion": None}, [0, 1, 3])
    assert out["top1"] == pytest.approx(np.mean([0.5, 0.6, 0.8])) and out["top1_std"] == pytest.approx(np.std([0.5, 0.6, 0.8]))
    assert out["n_std"] == 0 and out["protocol"] == "folds" and "name" not in out
    path = write_report({"map": float("nan"), "recall@1": 1.0}, str(tmp_path / "r"), "t")
    assert "| map | nan |" in open(path).read() and os.path.isfile(tmp_path / "r" / "result.json")


def test_pca_map_equals_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    from avssl.evaluate.plots import confusion_matrix, embed_2d

    x = np.random.default_rng(1).normal(size=(50, 6)) * np.arange(1, 7)
    ours, theirs = embed_2d(x), PCA(n_components=2).fit_transform(x)
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), atol=1e-9)
    counts = confusion_matrix(["a", "b", "c"], np.array([0, 0, 1, 2, -1]), np.array([0, 1, 1, 0, 2]))
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize("space, says", [("backbone", "holds backbone features"),
                                         ("", "does not record its feature space")])
def test_cross_modal_refuses_features_outside_the_joint_space(tmp_path, capsys, make_clustered, space, says):
    features = _joint_file(tmp_path / "x.npz", make_clustered, space=space)
    code, out, err = _run(capsys, ["eval", "retrieval", features, "--cross-modal"])
    assert code == 2 and out == "" and says in err and "x.npz" in err
    assert "avssl extract" in err and "--space embedding" in err


def test_linear_on_unlabelled_features_says_what_to_run(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    path = save_features(tmp_path / "unlabelled.npz", path_column=[f"/m/{i}.mp4" for i in range(6)], label=[""] * 6,
                         split=[""] * 6, group=[""] * 6, video=x)
    for task in ("linear", "knn"):
        code, _, err = _run(capsys, ["eval", task, path])
        assert code == 2 and "unlabelled.npz: no label and no split" in err
        assert "avssl probe UCF101/ --dataset ucf101" in err and "--cross-modal" in err


def test_confusion_matrix_is_sklearns_display_with_counts(tmp_path, monkeypatch):
    from sklearn.metrics import ConfusionMatrixDisplay

    from avssl.evaluate.plots import plot_confusion

    shown = {}
    original = ConfusionMatrixDisplay.plot

    def spy(self, **kwargs):
        shown["matrix"], shown["labels"], shown["format"] = self.confusion_matrix, self.display_labels, kwargs
        return original(self, **kwargs)

    monkeypatch.setattr(ConfusionMatrixDisplay, "plot", spy)
    path = plot_confusion(["a", "b"], np.array([0, 0, 0, 1, -1]), np.array([0, 0, 1, 1, 0]), str(tmp_path / "c.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"
    assert shown["matrix"].tolist() == [[2, 1], [0, 1]] and shown["format"]["values_format"] == "d"
    assert shown["labels"] == ["a (67% of 3)", "b (100% of 1)"]  # each true class's accuracy

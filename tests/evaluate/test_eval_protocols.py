"""Protocols on fake trees in the official layouts (UCF101 split 1, ESC-50): manifests from the
dataset adapters, random features attached, and a spy on what the probe trains and tests on."""

from __future__ import annotations

import numpy as np
import pytest

from avssl.data.adapters import get_adapter
from avssl.data.manifest import Manifest
from avssl.errors import UsageError
from avssl.evaluate import linear
from avssl.evaluate.features import Features, load_features, save_features
from avssl.evaluate.protocols import build_runs, infer_protocol

UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]
ESC_CLASSES = ["dog", "rain", "chainsaw"]


def _ucf_tree(root):
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(UCF_CLASSES, 1)))
    train, test = [], []
    for index, cls in enumerate(UCF_CLASSES, 1):
        for group in range(1, 11):
            for clip in range(1, 4):
                rel = f"{cls}/v_{cls}_g{group:02d}_c{clip:02d}.avi"
                (root / "UCF-101" / cls).mkdir(parents=True, exist_ok=True)
                (root / "UCF-101" / rel).write_bytes(b"")
                (test if group <= 7 else train).append(rel if group <= 7 else f"{rel} {index}")
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def _esc_tree(root):
    (root / "meta").mkdir(parents=True)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, cls in enumerate(ESC_CLASSES):
            for source in range(2):
                src = f"{fold}{target}{source}77"
                for take in "AB":  # two clips cut from one recording, in one fold
                    rows.append(f"{fold}-{src}-{take}-{target}.wav,{fold},{target},{cls},False,{src},{take}")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def _features_file(entries, path, make_clustered, seed=0):
    manifest = Manifest.from_rows([{"path": e.path, "label": e.label, "split": e.split, "group": e.group}
                                   for e in entries])
    x = make_clustered(manifest.strings("label").tolist(), dim=10, spread=0.8, seed=seed)
    return save_features(path, path_column=manifest.strings("path"), label=manifest.strings("label"),
                         split=manifest.strings("split"), group=manifest.strings("group"), video=x, audio=x[:, ::-1])


@pytest.fixture
def probe_spy(monkeypatch):
    """Records (training vectors, training groups, test vectors) of every linear_probe call."""
    calls = []
    real = linear.linear_probe

    def spy(x_train, labels_train, x_test, labels_test, groups_train, *args, **kwargs):
        calls.append((x_train, groups_train, x_test))
        return real(x_train, labels_train, x_test, labels_test, groups_train, *args, **kwargs)

    monkeypatch.setattr(linear, "linear_probe", spy)
    return calls


def _rows_of(vectors, features):
    index = {row.tobytes(): i for i, row in enumerate(features.video)}
    return np.array([index[v.tobytes()] for v in vectors])


def test_ucf101_split1_probe_trains_on_no_clip_of_a_test_group(tmp_path, make_clustered, probe_spy):
    entries = get_adapter("ucf101")(str(_ucf_tree(tmp_path / "ucf")), 1)
    f = load_features(_features_file(entries, tmp_path / "ucf_split1.npz", make_clustered))
    protocol, runs = build_runs([f], "auto")
    assert protocol == "splits" and [r.name for r in runs] == ["ucf_split1"]
    result = linear.evaluate_linear(runs, "video", cs=(0.1, 1.0), cv=3)
    (x_train, groups_train, x_test), = probe_spy
    train_rows, test_rows = _rows_of(x_train, f), _rows_of(x_test, f)
    official_test = {e.path for e in entries if e.split == "test"}
    assert {f.path[i] for i in test_rows} == official_test and len(test_rows) == 3 * 7 * 3
    test_groups = {f.group[i] for i in test_rows}
    assert not test_groups & {f.group[i] for i in train_rows}
    assert not test_groups & set(groups_train.tolist())
    assert result["top1"] > 0.8 and result["runs"][0]["n_test"] == 63


def test_esc50_runs_exactly_the_five_official_folds_without_recording_leaks(tmp_path, make_clustered, probe_spy):
    entries = get_adapter("esc50")(str(_esc_tree(tmp_path / "esc")))
    f = load_features(_features_file(entries, tmp_path / "esc50.npz", make_clustered))
    assert infer_protocol(f) == "folds"
    protocol, runs = build_runs([f], "auto")
    assert protocol == "folds" and [r.name for r in runs] == [f"fold{k}" for k in range(1, 6)]
    result = linear.evaluate_linear(runs, "audio", cs=(1.0,), cv=2)
    assert len(probe_spy) == 5 and len(result["runs"]) == 5
    tested = []
    for k, (x_train, groups_train, x_test) in enumerate(probe_spy, start=1):
        rows_train = runs[k - 1].train
        assert set(f.split[runs[k - 1].test].tolist()) == {str(k)}
        assert str(k) not in set(f.split[rows_train].tolist())
        assert not set(groups_train.tolist()) & set(f.group[runs[k - 1].test].tolist())
        assert len(x_test) == len(runs[k - 1].test) == 3 * 2 * 2
        tested += runs[k - 1].test.tolist()
    assert sorted(tested) == list(range(len(f)))  # every clip tested exactly once
    assert result["top1"] == pytest.approx(np.mean([r["top1"] for r in result["runs"]]))


def test_a_group_on_both_sides_is_an_error_naming_the_file_and_group(tmp_path):
    f = Features(path=np.array([f"/c{i}" for i in range(6)]), label=np.array(["a", "b"] * 3),
                 split=np.array(["train", "train", "train", "test", "test", "unused"]),
                 group=np.array(["g1", "g2", "g3", "g3", "g4", "g1"]), video=np.zeros((6, 2), np.float32),
                 source="split1.npz")
    with pytest.raises(UsageError, match=r"split1\.npz \(split1\): 1 source group\(s\) .* 'g3'"):
        build_runs([f], "splits")
    ok = f.take(np.array([0, 1, 2, 4, 5]))
    _, (run,) = build_runs([ok], "auto")
    assert run.train.tolist() == [0, 1, 2] and run.test.tolist() == [3]  # "unused" left out
    with pytest.raises(UsageError, match="cannot infer the protocol"):
        infer_protocol(f.take(np.array([0, 5])))
    with pytest.raises(UsageError, match="takes one features file"):
        build_runs([Features(path=np.array(["a", "b"]), label=np.array(["x", "y"]), split=np.array(["1", "2"]),
                             group=np.array(["", ""]), video=np.zeros((2, 1)))] * 2, "folds")
    unlabelled = Features(path=ok.path, label=np.array(["a", "", "a", "b", "b"]), split=ok.split, group=ok.group,
                          video=ok.video, source="s.npz")
    with pytest.raises(UsageError, match=r"s\.npz \(s\): 1 train/test row\(s\) without a label"):
        build_runs([unlabelled], "splits")

"""Bad input through the command line: exit 2 with one line that names the file, row, key or option at
fault, never a traceback (exit 1) and never a silent "last one wins". One table, one case per row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from corpus import write_config

from avssl.cli import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _edit_csv(source: Path, target: Path, edit) -> str:
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with open(target, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return str(target)


def _set(row: int, col: int, value: str):
    def edit(rows):
        rows[row][col] = value
    return edit


def _twice(rows):
    for row in rows:
        row.append(row[0])


def _edit_parquet(source: Path, target: Path, name: str, values, type_=None) -> str:
    table = pq.read_table(source)
    pq.write_table(table.set_column(table.column_names.index(name), name, pa.array(values, type=type_)), target)
    return str(target)


def _checkpoint(path: Path, config_path: str, edit=None) -> str:
    """A training checkpoint of the tiny config (random weights), changed by edit(payload)."""
    from avssl.config.schema import config_to_dict
    from avssl.methods.configs import load_config
    from avssl.methods.registry import method_class

    config = load_config(config_path)
    payload = {"state_dict": method_class(config.method.name)(config).state_dict(),
               "avssl_config": config_to_dict(config), "avssl_format_version": 1, "global_step": 1}
    if edit is not None:
        edit(payload)
    torch.save(payload, path)
    return str(path)


def _wrong_shape(payload):
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = torch.zeros(3, 3)


def _newer(payload):
    payload["avssl_format_version"] = 99


def _features(path: Path, dim: int = 4, labels=("a", "b", "a", "b"), model: str = "", seed: int = 0,
              split=("train", "train", "test", "test")) -> str:
    from avssl.evaluate.features import save_features

    n = len(labels)
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    if dim == 0:  # save_features refuses to write it: np.savez, as another tool might
        np.savez(path, video=x, path=np.array([f"/v{i}.mp4" for i in range(n)]), label=np.array(labels),
                 split=np.array(split), group=np.array([str(i) for i in range(n)]))
        return str(path)
    save_features(path, path_column=[f"/v{i}.mp4" for i in range(n)], label=list(labels), split=list(split),
                  group=[str(i) for i in range(n)], video=x, model=model)
    return str(path)


@pytest.fixture(scope="module")
def inputs(manifest, tmp_path_factory) -> dict[str, str]:
    """Every bad input of the table, made once from the good 4-file manifest."""
    root = tmp_path_factory.mktemp("bad_inputs")
    labelled = _edit_csv(manifest, root / "labelled.csv", lambda rows: [
        r.__setitem__(slice(10, 12), [("a", "b")[i % 2], ("train", "train", "test", "test")[i]])
        for i, r in enumerate(rows[1:])])
    from avssl.data.manifest import Manifest

    parquet = Path(Manifest.load(manifest).save(root / "m.parquet"))
    config = write_config(root / "c.yaml")
    (root / "empty.yaml").write_text("")
    (root / "dup.yaml").write_text(Path(config).read_text() + "seed: 1\n")
    (root / "text.ckpt").write_text("not a checkpoint\n")
    (root / "configs").mkdir()
    bad = {
        "labelled": labelled, "config": config,
        "dur_empty.csv": _edit_csv(manifest, root / "dur_empty.csv", _set(2, 1, "")),
        "dur_nan.csv": _edit_csv(manifest, root / "dur_nan.csv", _set(2, 1, "nan")),
        "dur_inf.csv": _edit_csv(manifest, root / "dur_inf.csv", _set(2, 1, "inf")),
        "dur_nan.parquet": _edit_parquet(parquet, root / "dur_nan.parquet", "duration", [2.0, None, 2.0, 2.0],
                                         pa.float64()),
        "dur_inf.parquet": _edit_parquet(parquet, root / "dur_inf.parquet", "duration", [2.0, np.inf, 2.0, 2.0]),
        "long_label.csv": _edit_csv(manifest, root / "long_label.csv", _set(2, 10, "x" * 200_000)),
        "null_path.parquet": _edit_parquet(parquet, root / "null_path.parquet", "path",
                                           [None] + [r for r in pq.read_table(parquet).column("path").to_pylist()[1:]],
                                           pa.string()),
        "two_paths.csv": _edit_csv(manifest, root / "two_paths.csv", _twice),
        "flag5.parquet": _edit_parquet(parquet, root / "flag5.parquet", "has_video", [1, 5, 1, 1], pa.int64()),
        "no_labels.csv": str(manifest),
        "wrong_shape.ckpt": _checkpoint(root / "wrong_shape.ckpt", config, _wrong_shape),
        "newer.ckpt": _checkpoint(root / "newer.ckpt", config, _newer),
        "zero_dim.npz": _features(root / "zero_dim.npz", dim=0),
        "one_class.npz": _features(root / "one_class.npz", labels=("a", "a", "a", "a")),
        "model_a.npz": _features(root / "model_a.npz", model="checkpoint sha256=aaaa; space=backbone"),
        "model_b.npz": _features(root / "model_b.npz", model="checkpoint sha256=bbbb; space=backbone", seed=1),
    }
    return {**bad, **{name: str(root / name) for name in ("empty.yaml", "dup.yaml", "text.ckpt", "configs")}}


def _pretrain(inputs, tmp, data, *extra):
    return ["pretrain", "--config", inputs["config"], "--data", inputs[data], "--out", str(tmp / "run"), *extra]


def _extract(inputs, tmp, checkpoint):
    return ["extract", "--checkpoint", inputs[checkpoint], "--data", inputs["labelled"],
            "--out", str(tmp / "f.npz"), "--workers", "0"]


def _finetune(inputs, tmp, checkpoint, *data):
    return (["finetune", "--checkpoint", checkpoint] + [a for d in data for a in ("--data", inputs[d])]
            + ["--out", str(tmp / "ft"), "batch_size=2", "max_steps=1", "num_workers=0"])


# case -> (argv builder, what stderr must name)
CASES = {
    "duration empty (CSV)": (lambda i, t: _pretrain(i, t, "dur_empty.csv"), ["dur_empty.csv:3", "duration"]),
    "duration nan (CSV)": (lambda i, t: _pretrain(i, t, "dur_nan.csv"), ["dur_nan.csv:3", "duration"]),
    "duration inf (CSV)": (lambda i, t: _pretrain(i, t, "dur_inf.csv"), ["dur_inf.csv:3", "duration", "inf"]),
    "duration null (Parquet)": (lambda i, t: _pretrain(i, t, "dur_nan.parquet"), ["dur_nan.parquet", "row 1"]),
    "duration inf (Parquet)": (lambda i, t: _pretrain(i, t, "dur_inf.parquet"), ["dur_inf.parquet", "row 1"]),
    "label over the CSV field limit": (lambda i, t: _pretrain(i, t, "long_label.csv"), ["long_label.csv:3"]),
    "null path (Parquet)": (lambda i, t: _pretrain(i, t, "null_path.parquet"), ["null_path.parquet", "'path'"]),
    "two path columns": (lambda i, t: _pretrain(i, t, "two_paths.csv"), ["two_paths.csv", "path", "more than once"]),
    "has_video=5 (Parquet)": (lambda i, t: _pretrain(i, t, "flag5.parquet"), ["flag5.parquet", "has_video"]),
    "crop_scale reversed": (lambda i, t: _pretrain(i, t, "labelled", "data.video_augment.crop_scale=[1.0,0.4]"),
                            ["crop_scale", "[1.0, 0.4]"]),
    "trainer.accelerator=gpu without a GPU": (
        lambda i, t: _pretrain(i, t, "labelled", "trainer.accelerator=gpu"),
        ["trainer.accelerator=gpu", "no CUDA GPU"]),
    "empty YAML": (lambda i, t: ["pretrain", "--config", i["empty.yaml"], "--data", i["labelled"],
                                 "--out", str(t / "r")], ["empty.yaml", "empty"]),
    "YAML key twice": (lambda i, t: ["pretrain", "--config", i["dup.yaml"], "--data", i["labelled"],
                                     "--out", str(t / "r")], ["dup.yaml", "'seed'", "twice"]),
    "--config DIR": (lambda i, t: ["pretrain", "--config", i["configs"], "--data", i["labelled"],
                                   "--out", str(t / "r")], ["configs", "directory"]),
    "override between options": (lambda i, t: ["pretrain", "--config", i["config"], "seed=1", "--data",
                                                i["labelled"], "trainer.max_steps=1", "--out", str(t / "r")],
                                 ["trainer.max_steps=1", "after all the options"]),
    "text file as checkpoint": (lambda i, t: _extract(i, t, "text.ckpt"), ["text.ckpt", "not a loadable checkpoint"]),
    "wrong-shape state dict": (lambda i, t: _extract(i, t, "wrong_shape.ckpt"), ["wrong_shape.ckpt", "(3, 3)"]),
    "newer checkpoint (extract)": (lambda i, t: _extract(i, t, "newer.ckpt"), ["newer.ckpt", "newer avssl"]),
    "newer checkpoint (finetune)": (lambda i, t: _finetune(i, t, i["newer.ckpt"], "labelled"),
                                    ["newer.ckpt", "newer avssl"]),
    "finetune: a later split is bad": (lambda i, t: _finetune(i, t, "random:" + i["config"], "labelled",
                                                              "no_labels.csv"), ["train.csv", "'train'"]),
    "eval linear on 0-dim features": (lambda i, t: ["eval", "linear", i["zero_dim.npz"]],
                                      ["zero_dim.npz", "0 feature dimensions"]),
    "eval knn on 0-dim features": (lambda i, t: ["eval", "knn", i["zero_dim.npz"]], ["zero_dim.npz"]),
    "eval linear --cv 0": (lambda i, t: ["eval", "linear", i["model_a.npz"], "--cv", "0"], ["--cv"]),
    "eval knn over one class": (lambda i, t: ["eval", "knn", i["one_class.npz"]], ["one_class.npz", "1 class"]),
    "eval retrieval over one class": (lambda i, t: ["eval", "retrieval", i["one_class.npz"]],
                                      ["one_class.npz", "same class"]),
    "eval retrieval --ks 0": (lambda i, t: ["eval", "retrieval", i["model_a.npz"], "--ks", "0"], ["--ks"]),
    "eval knn --k 0": (lambda i, t: ["eval", "knn", i["model_a.npz"], "--k", "0"], ["--k"]),
    "eval linear: two models": (lambda i, t: ["eval", "linear", i["model_a.npz"], i["model_b.npz"]],
                                ["model_a.npz", "model_b.npz", "different models"]),
    "eval linear: one file twice": (lambda i, t: ["eval", "linear", i["model_a.npz"], i["model_a.npz"]],
                                    ["model_a.npz", "twice"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_naming_what_is_wrong(case, inputs, tmp_path, capsys):
    if "without a GPU" in case and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv, named = CASES[case]
    try:
        code = main(argv(inputs, tmp_path))
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    for text in named:
        assert text in err, (text, err[-2000:])
    assert not (tmp_path / "ft" / "split1").exists()  # nothing trained before a later split was checked

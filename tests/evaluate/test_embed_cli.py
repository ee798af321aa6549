"""`avssl embed`: files, folders and manifests in; Parquet or .npz out with the timestamps and what
made them; pooling; bad files skipped and counted, --strict stopping; a checkpoint of another
architecture refused naming the file."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import torch

from avssl.data.probing import build_manifest, probe_paths
from avssl.evaluate.embed_io import load_embeddings
from avssl.evaluate.pretrained import load
from use_support import corrupt_file, run_verb, write_av, write_run


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed_media")
    folder = root / "videos"
    folder.mkdir()
    good = [write_av(folder / "a.mp4", 2.0, seed=1), write_av(folder / "b.mp4", 1.6, seed=2)]
    silent = write_av(root / "silent.mp4", 1.0, audio=False, seed=3)
    broken = corrupt_file(root / "broken.mp4")
    return {"folder": folder, "good": good, "silent": silent, "broken": broken, "root": root}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("embed_run") / "run")


def summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_windows_of_a_folder_with_timestamps_and_provenance(media, run_dir, tmp_path, capsys, suffix):
    out = tmp_path / f"emb{suffix}"
    code = run_verb("embed", [str(media["folder"]), "--model", str(run_dir), "--out", str(out),
                              "--modality", "both", "--space", "joint", "--batch", "3"])
    assert code == 0 and summary(capsys)["rows"] == 7
    table = load_embeddings(str(out))
    # a.mp4: 2.0 s -> windows at 0, 0.5, 1.0, 1.5; b.mp4: 1.6 s -> 0, 0.5, 1.0 (0.5 s clips)
    assert [p.rsplit("/", 1)[-1] for p in table.path] == ["a.mp4"] * 4 + ["b.mp4"] * 3
    assert table.start.tolist() == [0.0, 0.5, 1.0, 1.5, 0.0, 0.5, 1.0]
    assert table.end.tolist() == [0.5, 1.0, 1.5, 2.0, 0.5, 1.0, 1.5]
    assert table.video.shape == (7, 64) and table.audio.shape == (7, 64) and table.video.dtype == np.float32
    meta = table.metadata
    assert (meta["space"], meta["modality"], meta["pool"], meta["window"], meta["stride"]) == \
        ("joint", "both", "none", 0.5, 0.5)
    from avssl.evaluate.features import file_sha256

    assert meta["checkpoint_sha256"] == file_sha256(run_dir / "checkpoints" / "last.ckpt") and meta["step"] == 5
    assert json.loads(meta["config"])["data"]["clip"]["frames"] == 4
    model = load(run_dir)
    want = model.embed_video(media["good"][0], space="joint")
    np.testing.assert_allclose(table.video[:4], want.vectors, atol=1e-5)


def test_pooled_rows_are_the_mean_of_the_windows(media, run_dir, tmp_path, capsys):
    out = tmp_path / "pooled.npz"
    assert run_verb("embed", [*media["good"], "--model", str(run_dir), "--out", str(out), "--pool", "mean"]) == 0
    table = load_embeddings(str(out))
    assert table.video.shape == (2, 128) and table.audio is None
    assert table.start.tolist() == [0.0, 0.0] and table.end.tolist() == [2.0, 1.5]
    windows = load(run_dir).embed_video(media["good"][1])
    np.testing.assert_allclose(table.video[1], windows.vectors.mean(axis=0), atol=1e-5)


def test_a_manifest_is_accepted(media, run_dir, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    build_manifest(media["good"], probe_paths(media["good"], workers=0, progress=False)).save(manifest)
    out = tmp_path / "m.npz"
    assert run_verb("embed", [str(manifest), "--model", str(run_dir), "--out", str(out), "--modality", "audio"]) == 0
    assert summary(capsys)["embedded"] == 2 and load_embeddings(str(out)).audio.shape == (7, 128)


@pytest.mark.parametrize("modality", ["audio", "both"])
def test_bad_files_are_skipped_counted_and_named(media, run_dir, tmp_path, capsys, modality):
    out = tmp_path / "e.npz"
    code = run_verb("embed", [media["good"][0], media["silent"], media["broken"], "--model", str(run_dir),
                              "--out", str(out), "--modality", modality])
    result = summary(capsys)
    assert code == 0 and result["embedded"] == 1 and result["failed_count"] == 2
    reasons = {f["path"].rsplit("/", 1)[-1]: f["reason"] for f in result["failed"]}
    assert set(reasons) == {"silent.mp4", "broken.mp4"} and "no audio stream" in reasons["silent.mp4"]
    assert len(load_embeddings(str(out))) == 4
    assert json.loads((tmp_path / "e.npz.json").read_text())["failed_count"] == 2


def test_strict_stops_at_the_first_bad_file(media, run_dir, tmp_path, caplog):
    out = tmp_path / "e.npz"
    code = run_verb("embed", [media["broken"], media["good"][0], "--model", str(run_dir), "--out", str(out),
                              "--strict"])
    assert code == 1 and not out.exists() and "broken.mp4" in caplog.text


def test_a_checkpoint_of_another_architecture_is_refused_naming_it(media, tmp_path, capsys):
    run = write_run(tmp_path / "run")
    ckpt = run / "checkpoints" / "last.ckpt"
    payload = torch.load(ckpt, weights_only=True)
    payload["avssl_config"]["model"]["video"] = {"name": "r3d_18-tiny"}  # weights are an r2plus1d_18
    torch.save(payload, ckpt)
    code = run_verb("embed", [media["good"][0], "--model", str(run), "--out", str(tmp_path / "e.npz")])
    message = capsys.readouterr().out
    assert code == 2 and str(ckpt) in message and "video_encoder" in message


@pytest.mark.parametrize("argv, words", [
    (["--out", "e.txt"], "--out"),
    (["--out", "e.npz", "--stride", "0.3"], "--stride"),
    (["--out", "e.npz", "--model", "nowhere"], "nowhere"),
])
def test_bad_usage_names_the_option(media, run_dir, tmp_path, capsys, argv, words):
    args = [media["good"][0], "--model", str(run_dir), *argv]
    if argv.count("--model"):
        args = [media["good"][0], *argv]
    args = [a if not a.startswith("e.") else str(tmp_path / a) for a in args]
    assert run_verb("embed", args) == 2
    assert words in capsys.readouterr().out


@pytest.mark.parametrize("verb, module", [("embed", "embed"), ("export", "export"),
                                          ("import-weights", "import_weights")])
def test_each_verb_has_help_with_examples(monkeypatch, capsys, verb, module):
    from avssl import cli

    doc = importlib.import_module(f"avssl.cli.{module}").__doc__
    monkeypatch.setitem(cli.VERBS, verb, (module, doc.splitlines()[0]))
    with pytest.raises(SystemExit) as stop:
        cli.main([verb, "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "examples:" in out and f"avssl {verb} " in out

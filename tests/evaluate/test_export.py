"""`avssl export`: safetensors modules, config.json and model card of a real run; `avssl.load` of
the export gives the same embeddings; training state left out; TorchScript and ONNX encoders equal
the eager ones; a missing ONNX package is named."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import avssl
from avssl.errors import UsageError
from avssl.evaluate.export import export_model
from avssl.evaluate.features import file_sha256
from use_support import pretrain_run, run_verb, write_av, write_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = pretrain_run(tmp_path_factory.mktemp("export_run"))
    (run / "eval").mkdir()
    (run / "eval" / "ucf_linear.json").write_text(json.dumps({"top1": 0.625, "top5": 0.9, "n": 40}))
    return run


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "avts"
    manifest = trained.parent / "train.csv"
    assert run_verb("export", [str(trained), "--out", str(out), "--data", str(manifest)]) == 0
    return out


def test_the_export_holds_the_modules_config_and_card(trained, exported):
    ckpt = trained / "checkpoints" / "last.ckpt"
    model = avssl.load(trained)
    record = json.loads((exported / "config.json").read_text())
    assert record["format"] == "avssl-export" and record["version"] == 1 and record["method"] == "avts"
    assert set(record["modules"]) == {"video_encoder", "audio_encoder", "video_head", "audio_head"}
    assert record["source"]["sha256"] == file_sha256(ckpt) and record["source"]["step"] == 2
    fingerprint = torch.load(ckpt, weights_only=True, map_location="cpu").get("avssl_data_fingerprint")
    assert record["source"]["data_fingerprint"] == fingerprint
    assert record["data_manifest"]["sha256"] == file_sha256(trained.parent / "train.csv")
    assert record["inputs"]["video"] == [3, 4, 16, 16] and record["inputs"]["audio_samples"] == 8000
    video = load_file(str(exported / "video_encoder.safetensors"))
    assert sorted(video) == sorted(model.video_encoder.state_dict())  # torchvision-style keys, no prefix
    assert record["modules"]["video_encoder"]["tensors"] == len(video)
    assert record["modules"]["video_encoder"]["architecture"]["name"] == "mc3_18"
    card = (exported / "README.md").read_text()
    assert "method: `avts`; steps trained: 2" in card and file_sha256(ckpt) in card
    assert "`eval/ucf_linear.json`: top1 0.6250, top5 0.9000" in card and "last logged train/loss" in card
    assert "train.csv" in card and f'avssl.load("{exported}")' in card and str(fingerprint or "not recorded") in card


def test_loading_the_export_gives_the_checkpoints_embeddings(trained, exported, tmp_path):
    video = write_av(tmp_path / "v.mp4", 2.0)
    a, b = avssl.load(trained), avssl.load(exported)
    assert b.step == 2 and b.sha256 == a.sha256 and not b.random_init
    for space in ("backbone", "joint"):
        np.testing.assert_array_equal(a.embed_video(video, space=space).vectors, b.embed_video(video, space=space).vectors)
        np.testing.assert_array_equal(a.embed_audio(video, space=space).vectors, b.embed_audio(video, space=space).vectors)
    with pytest.raises(UsageError, match="already an export"):
        export_model(str(exported), tmp_path / "again")


def test_training_state_is_left_out_and_the_rest_kept(tmp_path):
    run = write_run(tmp_path / "run", name="temporal-av-tiny", overrides=())
    record = export_model(str(run), tmp_path / "out")
    assert set(record["modules"]) == {"video_encoder", "audio_encoder", "video_head", "audio_head", "heads"}
    original, loaded = avssl.load(run), avssl.load(tmp_path / "out")
    for name in record["modules"]:
        for (key, x), y in zip(getattr(original.method, name).state_dict().items(),
                               getattr(loaded.method, name).state_dict().values()):
            assert torch.equal(x, y), f"{name}.{key}"


def test_a_damaged_export_is_refused_naming_the_file(tmp_path):
    run = write_run(tmp_path / "run")
    export_model(str(run), tmp_path / "out")
    from safetensors.torch import save_file

    save_file({"stem.0.weight": torch.zeros(1)}, str(tmp_path / "out" / "video_head.safetensors"))
    with pytest.raises(UsageError, match="video_head.safetensors does not fit"):
        avssl.load(tmp_path / "out")


def test_torchscript_and_onnx_encoders_equal_the_eager_ones(trained, tmp_path):
    import onnxruntime

    record = export_model(str(trained), tmp_path / "traced", torchscript=True, onnx=True)
    assert record["variants"]["onnx"] == {"video_encoder": "video_encoder.onnx", "audio_encoder": "audio_encoder.onnx"}
    model = avssl.load(trained)
    inputs = {"video_encoder": torch.randn(3, 3, 4, 16, 16), "audio_encoder": torch.randn(3, 1, 32, 51)}
    assert record["inputs"]["audio"] == [1, 32, 51]
    for name, x in inputs.items():
        eager = getattr(model, name)(x)
        scripted = torch.jit.load(str(tmp_path / "traced" / f"{name}.torchscript.pt"))
        torch.testing.assert_close(scripted(x), eager, atol=1e-4, rtol=1e-4)
        session = onnxruntime.InferenceSession(str(tmp_path / "traced" / f"{name}.onnx"))
        (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        np.testing.assert_allclose(onnx_out, eager.numpy(), atol=1e-4, rtol=1e-4)


def test_a_missing_onnx_package_is_named(trained, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert run_verb("export", [str(trained), "--out", str(tmp_path / "x"), "--onnx"]) == 2
    assert "`onnxscript` package" in capsys.readouterr().out and not (tmp_path / "x").exists()
    assert run_verb("export", [str(trained), "--out", str(tmp_path / "y"), "--data", "gone.csv"]) == 2
    assert "--data gone.csv: manifest not found" in capsys.readouterr().out and not (tmp_path / "y").exists()

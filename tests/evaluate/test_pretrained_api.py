"""`avssl.load` and the model it gives: every kind of PATH, the tensor inputs, the lazy top-level
names, and errors that name the file or the argument."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import avssl
from avssl.errors import UsageError
from avssl.evaluate.model_loading import load_model
from use_support import tiny_config, write_av, write_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("api") / "run", step=7)


def test_import_avssl_stays_light():
    code = "import sys, avssl; print('torch' in sys.modules, callable(avssl.load), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True"]  # avssl.load imports torch on first use only
    assert avssl.load is avssl.evaluate.pretrained.load
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        avssl.nope  # noqa: B018


def test_a_run_dir_and_its_checkpoint_give_the_same_model(run_dir):
    a, b = avssl.load(run_dir), avssl.load(run_dir / "checkpoints" / "last.ckpt")
    assert a.source == b.source == str(run_dir / "checkpoints" / "last.ckpt") and a.step == 7 and not a.random_init
    for (name, x), y in zip(a.method.state_dict().items(), b.method.state_dict().values()):
        assert torch.equal(x, y), name
    random = avssl.load("random:avts-tiny")
    assert random.random_init and random.sha256 == "" and len(a.sha256) == 64
    assert isinstance(a.video_encoder, torch.nn.Module) and a.video_encoder is a.method.video_encoder
    assert not any(p.requires_grad for p in a.method.parameters()) and not a.method.training


def test_tensor_inputs_give_the_vectors_of_the_method(run_dir):
    model = avssl.load(run_dir)
    config = tiny_config()
    clips = torch.randint(0, 256, (3, 3, 4, 16, 16), dtype=torch.uint8)
    method = model.method
    want = method.video_features(method.video_input(clips, train=False))
    torch.testing.assert_close(model.embed_video(clips), want)
    torch.testing.assert_close(model.embed_video(clips[1]), want[1])
    waves = torch.randn(2, round(config.data.clip.audio_window * 16000)) * 0.1
    joint = model.embed_audio(waves, space="joint")
    torch.testing.assert_close(joint, method.embed_audio(method.audio_input(waves, train=False)))
    torch.testing.assert_close(joint.norm(dim=1), torch.ones(2))


@pytest.mark.parametrize("call, match", [
    (lambda m: m.embed_video(torch.zeros(2, 3, 4, 16, 16)), "uint8"),
    (lambda m: m.embed_video(torch.zeros(4, 16, 16, dtype=torch.uint8)), r"\[B, 3, T, H, W\]"),
    (lambda m: m.embed_audio(torch.zeros(2, 3, 4)), r"\[B, N\]"),
    (lambda m: m.embed_audio(torch.zeros(8000, dtype=torch.int16)), "float"),
    (lambda m: m.embed_video(torch.zeros(1, 3, 4, 16, 16, dtype=torch.uint8), space="embedding"), "space"),
])
def test_bad_tensor_input_says_what_is_expected(run_dir, call, match):
    with pytest.raises(UsageError, match=match):
        call(avssl.load(run_dir))


def test_paths_that_hold_no_model_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="empty: a folder that is neither a run dir"):
        avssl.load(tmp_path / "empty")
    with pytest.raises(UsageError, match="missing.ckpt: no such checkpoint"):
        avssl.load(tmp_path / "missing.ckpt")
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(UsageError, match="notes.ckpt"):
        avssl.load(text)


def test_embeddings_of_a_path_match_load_model(run_dir, tmp_path):
    video = write_av(tmp_path / "v.mp4", 1.5)
    emb = avssl.load(run_dir).embed_video(video, stride=0.25)
    assert emb.starts.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0] and emb.path == video and len(emb) == 5
    loaded = load_model(str(run_dir / "checkpoints" / "last.ckpt"))
    from avssl.evaluate.pretrained import PretrainedModel

    same = PretrainedModel(loaded.method, loaded.config, "x").embed_video(video, stride=0.25)
    np.testing.assert_array_equal(emb.vectors, same.vectors)

"""`avssl extract`: clip placement, video-level averaging (checked against a hand computation with a
mock model), the features file it writes, the random-init baseline, and bad / incomplete files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avssl import cli
from avssl.config.bundled import resolve_config_path
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.manifest import Manifest
from avssl.data.sampling import evenly_spaced_starts
from avssl.evaluate.extract import extract_features, three_crops
from avssl.evaluate.features import load_features
from avssl.evaluate.model_loading import load_model
from avssl.media import MediaReader
from avssl.media.writer import write_media
from avssl.methods.configs import load_config


@pytest.fixture(autouse=True)
def verbs(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "extract", ("extract", "extract features"))


@pytest.fixture(scope="module")
def ucf_manifest(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("extract") / "ucf1.csv"
    assert cli.main(["probe", str(tiny_world / "ucf"), "--dataset", "ucf101", "--split", "1", "--out", str(out)]) == 0
    return out


class MeanModel:
    """Features you can compute by hand: the mean pixel of a clip, the mean sample of a waveform."""

    def video_input(self, x, train=False):
        assert not train
        return x.float()

    def video_features(self, x):
        return torch.stack([x.mean(dim=(1, 2, 3, 4)), x[:, 0].mean(dim=(1, 2, 3))], dim=1)

    def audio_input(self, x, train=False):
        return x.float()

    def audio_features(self, x):
        return torch.stack([x.mean(dim=1), x.abs().mean(dim=1)], dim=1)


def test_three_crops_cover_the_long_side():
    clip = torch.arange(2 * 4 * 10).reshape(1, 2, 4, 10).expand(3, 2, 4, 10)
    crops = three_crops(clip, 4)
    assert crops.shape == (3, 3, 2, 4, 4)
    assert torch.equal(crops[0], clip[..., 0:4]) and torch.equal(crops[1], clip[..., 3:7])
    assert torch.equal(crops[2], clip[..., 6:10])


@pytest.mark.parametrize("clips", [1, 3])
def test_video_level_features_average_the_clips_at_the_documented_starts(ucf_manifest, clips):
    config = load_config(resolve_config_path("avts-tiny"))
    manifest = Manifest.load(ucf_manifest).take(np.arange(3))
    result = extract_features(manifest, MeanModel(), config, modality="both", clips_per_video=clips,
                              batch_size=2, workers=0)
    assert result.rows.tolist() == [0, 1, 2] and result.video.shape == (3, 2) and result.audio.shape == (3, 2)
    c = config.data.clip
    for row, path in enumerate(manifest.strings("path")):
        starts = evenly_spaced_starts(float(manifest.column("duration")[row]), c.video_seconds, clips, c.fps)
        with MediaReader(path) as reader:
            video = [read_video_clip(reader, s, c.frames, c.fps, config.data.video_augment, None).float()
                     for s in starts]
            audio = [read_audio_clip(reader, s, c.audio_window, c.sample_rate) for s in starts]
        want_video = [np.mean([v.mean().item() for v in video]), np.mean([v[0].mean().item() for v in video])]
        want_audio = [np.mean([a.mean().item() for a in audio]), np.mean([a.abs().mean().item() for a in audio])]
        np.testing.assert_allclose(result.video[row], want_video, rtol=1e-5)
        np.testing.assert_allclose(result.audio[row], want_audio, rtol=1e-4, atol=1e-7)
    if clips == 3:  # three different windows: the average is not the centre clip's value
        single = extract_features(manifest, MeanModel(), config, modality="video", clips_per_video=1, workers=0)
        assert not np.allclose(single.video, result.video)


def test_random_init_is_deterministic_and_differs_from_another_seed():
    a, b = load_model("random:avts-tiny"), load_model("random:avts-tiny")
    torch.manual_seed(123)  # the global RNG state must not matter
    c = load_model("random:avts-tiny")
    other = load_model("random:avts-tiny", overrides=["seed=1"])
    for (name, x), y, z, w in zip(a.method.state_dict().items(), b.method.state_dict().values(),
                                  c.method.state_dict().values(), other.method.state_dict().values()):
        assert torch.equal(x, y) and torch.equal(x, z), name
    weights = [k for k, v in a.method.state_dict().items() if v.dtype.is_floating_point and v.ndim >= 2]
    assert not torch.equal(a.method.state_dict()[weights[0]], other.method.state_dict()[weights[0]])


def test_extract_cli_writes_features_and_reports_bad_files(ucf_manifest, tmp_path, capsys):
    rows = Manifest.load(ucf_manifest).take(np.arange(4))
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    silent = tmp_path / "silent.mp4"
    frames = np.random.default_rng(0).integers(0, 255, size=(30, 48, 64, 3), dtype=np.uint8)
    write_media(silent, frames, fps=15.0, audio=None, sample_rate=16000, fmt="mp4")
    base = {"duration": 2.0, "has_video": True, "video_fps": 15.0, "width": 64, "height": 48, "num_frames": 30,
            "label": "Broken", "split": "test"}
    extra = Manifest.from_rows([
        {**base, "path": str(corrupt), "has_audio": True, "audio_sample_rate": 16000, "audio_channels": 1},
        {**base, "path": str(silent), "has_audio": False},
        {**base, "path": str(tmp_path / "gone.mp4"), "has_audio": True, "error": "NotFound: no such file"},
    ])
    manifest = tmp_path / "m.csv"
    Manifest.from_rows([{**{k: getattr(r, k) for k in r.__dataclass_fields__}} for r in rows]
                       + [{k: getattr(r, k) for k in r.__dataclass_fields__} for r in extra]).save(manifest)
    out = tmp_path / "f.npz"
    code = cli.main(["extract", "--checkpoint", "random:avts-tiny", "--data", str(manifest), "--out", str(out),
                     "--modality", "both", "--workers", "1", "--batch", "3"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    features = load_features(out)
    assert features.video.shape == (4, 128) and features.audio.shape == (4, 128)
    assert features.video.dtype == np.float32
    assert features.path.tolist() == rows.strings("path").tolist()
    assert features.label.tolist() == rows.strings("label").tolist()
    assert features.split.tolist() == rows.strings("split").tolist()
    assert features.group.tolist() == rows.strings("group").tolist()
    assert features.model == "random:avts-tiny; space=backbone"  # files of one model can be told apart
    assert [f["path"] for f in summary["failed"]] == [str(tmp_path / "gone.mp4"), str(corrupt)]
    assert summary["left_out"] == [{"path": str(silent), "reason": "no audio stream"}]
    assert json.loads((tmp_path / "f.npz.json").read_text())["rows"] == 4
    # video only keeps the silent file; the same model gives the same video rows
    out_video = tmp_path / "v.npz"
    assert cli.main(["extract", "--checkpoint", "random:avts-tiny", "--data", str(manifest), "--out", str(out_video),
                     "--workers", "0"]) == 0
    capsys.readouterr()
    video_only = load_features(out_video)
    assert video_only.audio is None and video_only.path.tolist()[-1] == str(silent)
    np.testing.assert_allclose(video_only.video[:4], features.video, rtol=1e-5, atol=1e-6)
    # --strict stops on the first bad file
    assert cli.main(["extract", "--checkpoint", "random:avts-tiny", "--data", str(manifest), "--out",
                     str(tmp_path / "s.npz"), "--workers", "0", "--strict"]) == 1
    assert not (tmp_path / "s.npz").exists()


def test_extract_rejects_a_missing_checkpoint(ucf_manifest, tmp_path, capsys):
    code = cli.main(["extract", "--checkpoint", str(tmp_path / "nope.ckpt"), "--data", str(ucf_manifest),
                     "--out", str(tmp_path / "f.npz")])
    assert code == 2 and "nope.ckpt" in capsys.readouterr().err


def test_embedding_space_uses_the_projection_heads(ucf_manifest):
    # av-nce's heads read the pooled backbone features (AVTS's video head reads time bins of the map)
    model = load_model("random:av-nce-tiny")
    manifest = Manifest.load(ucf_manifest).take(np.arange(2))
    backbone = extract_features(manifest, model.method, model.config, modality="both", clips_per_video=1)
    joint = extract_features(manifest, model.method, model.config, modality="both", clips_per_video=1,
                             space="embedding")
    assert joint.video.shape == (2, model.config.model.embed_dim) == joint.audio.shape
    with torch.no_grad():
        want = torch.nn.functional.normalize(model.method.video_head(torch.from_numpy(backbone.video)), dim=1)
    np.testing.assert_allclose(joint.video, want.numpy(), rtol=1e-4, atol=1e-5)

"""Encoder checkpoints: round trip, prefixes of wrapped and whole-model checkpoints, mismatch refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from avssl.errors import UsageError
from avssl.models import (
    CheckpointMismatchError,
    build_audio_encoder,
    build_video_encoder,
)
from avssl.train.checkpoint_format import load_encoder, save_encoder


def perturb_batch_norm(module: nn.Module) -> None:
    # non-default running statistics, so that a round trip that forgot buffers would show
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("name", ["r2plus1d_18-tiny", "vgg_audio-tiny"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    is_video = name.startswith("r2")
    encoder = (build_video_encoder if is_video else build_audio_encoder)(name)
    perturb_batch_norm(encoder)
    encoder.eval()
    x = torch.randn(2, 3, 4, 32, 32) if is_video else torch.randn(2, 1, 32, 48)
    save_encoder(encoder, tmp_path / "enc.pt")
    loaded = load_encoder(tmp_path / "enc.pt").eval()
    assert loaded.config == encoder.config
    with torch.no_grad():
        assert torch.equal(encoder(x), loaded(x))
        assert torch.equal(encoder(x, return_map=True), loaded(x, return_map=True))


def test_lightning_checkpoint_with_wrapper_prefixes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    video = build_video_encoder("mc3_18-tiny")
    audio = build_audio_encoder("resnet18_audio-tiny")
    state = {f"model.module.video_encoder.{k}": v for k, v in video.state_dict().items()}
    state.update({f"model.audio_encoder._orig_mod.{k}": v for k, v in audio.state_dict().items()})
    torch.save({"state_dict": state, "epoch": 3, "global_step": 10}, tmp_path / "last.ckpt")
    fresh_video = load_encoder(tmp_path / "last.ckpt", build_video_encoder("mc3_18-tiny"))
    fresh_audio = load_encoder(tmp_path / "last.ckpt", build_audio_encoder("resnet18_audio-tiny"),
                               prefix="model.audio_encoder")
    for a, b in ((video, fresh_video), (audio, fresh_audio)):
        assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_ambiguous_whole_model_checkpoint_needs_a_prefix(tmp_path: Path) -> None:
    encoder = build_video_encoder("r3d_18-tiny")
    state = {f"{owner}.{k}": v for owner in ("encoder", "momentum_encoder") for k, v in encoder.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "two.ckpt")
    with pytest.raises(UsageError, match=r"several encoders \['encoder', 'momentum_encoder'\]"):
        load_encoder(tmp_path / "two.ckpt", build_video_encoder("r3d_18-tiny"))
    assert load_encoder(tmp_path / "two.ckpt", build_video_encoder("r3d_18-tiny"), prefix="momentum_encoder")


def test_mismatched_architecture_is_refused_naming_the_first_key(tmp_path: Path) -> None:
    save_encoder(build_video_encoder("r3d_18-tiny"), tmp_path / "r3d.pt")
    with pytest.raises(CheckpointMismatchError, match=r"'stem\.0\.weight': shape \[16, 3, 3, 7, 7\] in the checkpoint, "
                                                      r"\[11, 3, 1, 7, 7\] in the model"):
        load_encoder(tmp_path / "r3d.pt", build_video_encoder("r2plus1d_18-tiny"))
    save_encoder(build_video_encoder("r3d_18", width=8, layers=[1, 1]), tmp_path / "short.pt")
    with pytest.raises(CheckpointMismatchError, match=r"'layer1\.1\.conv1\.0\.weight': missing from the checkpoint"):
        load_encoder(tmp_path / "short.pt", build_video_encoder("r3d_18", width=8, layers=[2, 1]))
    with pytest.raises(CheckpointMismatchError, match=r"'layer3\.0\.conv1\.0\.weight': in the checkpoint but not"):
        load_encoder(tmp_path / "r3d.pt", build_video_encoder("r3d_18", width=16, layers=[1, 1]))


def test_unsafe_or_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_encoder(tmp_path / "nope.pt")

    torch.save({"state_dict": {}, "hook": Path("x")}, tmp_path / "pickled.pt")
    with pytest.raises(UsageError, match="objects other than weights"):
        load_encoder(tmp_path / "pickled.pt", build_video_encoder("r3d_18-tiny"))
    torch.save(build_video_encoder("r3d_18-tiny").state_dict(), tmp_path / "bare.pt")
    with pytest.raises(UsageError, match="no architecture config"):
        load_encoder(tmp_path / "bare.pt")
    assert load_encoder(tmp_path / "bare.pt", build_video_encoder("r3d_18-tiny"))

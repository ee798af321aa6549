"""Checkpoints and features files load without running code, and a checkpoint of a newer format is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from corpus import write_config

from avssl.cli import main
from avssl.errors import UsageError
from avssl.evaluate.features import load_features
from avssl.models.factory import build_encoder
from avssl.train.checkpoint_format import (
    TRAINING_FORMAT_VERSION,
    load_encoder,
    safe_load,
)
from avssl.train.checkpoint_io import CheckpointError, atomic_torch_save

RAN = []


class Payload:
    """Unpickling this calls RAN.append: proof that code from the file ran."""

    def __reduce__(self):
        return (RAN.append, ("code ran",))


def test_load_encoder_refuses_a_pickle_bearing_file(tmp_path):
    encoder = build_encoder({"name": "vgg_audio-tiny"})
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": encoder.state_dict(), "extra": Payload()}, path)
    with pytest.raises(UsageError, match="other than weights"):
        load_encoder(path, encoder)
    assert RAN == []


def test_load_features_refuses_a_pickle_bearing_file(tmp_path):
    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, path=np.array(["a"]), label=np.array(["x"]), split=np.array([""]), group=np.array([""]),
                 video=np.zeros((1, 4), np.float32), evil=np.array([Payload()], dtype=object))
    with pytest.raises(UsageError, match="evil.npz"):
        load_features(path)
    assert RAN == []


def test_resume_refuses_a_pickle_bearing_checkpoint(tmp_path, manifest, caplog):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "global_step": 1, "extra": Payload()}, run_dir / "checkpoints" / "last.ckpt")
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(manifest),
                 "--out", str(run_dir)])
    assert code == 1
    assert "refused: it holds objects other than tensors" in caplog.text and "last.ckpt" in caplog.text
    assert RAN == []


def test_a_checkpoint_of_a_newer_format_is_refused(tmp_path, manifest, capsys):
    config = write_config(tmp_path / "c.yaml")
    run_dir = tmp_path / "run"
    assert main(["pretrain", "--config", config, "--data", str(manifest), "--out", str(run_dir),
                 "trainer.max_steps=1"]) == 0
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = safe_load(last)
    assert checkpoint["avssl_format_version"] == TRAINING_FORMAT_VERSION
    checkpoint["avssl_format_version"] = TRAINING_FORMAT_VERSION + 1
    atomic_torch_save(checkpoint, last, keep_previous=False)
    # resuming: exit 2 naming the version (not a fallback to an older file: the file is not damaged)
    assert main(["pretrain", "--config", config, "--data", str(manifest), "--out", str(run_dir),
                 "trainer.max_steps=2"]) == 2
    assert f"avssl_format_version {TRAINING_FORMAT_VERSION + 1}" in capsys.readouterr().err
    with pytest.raises(UsageError, match="newer avssl"):
        load_encoder(last, build_encoder({"name": "vgg_audio-tiny"}), prefix="audio_encoder")


def test_both_checkpoints_corrupt_exits_1_and_keeps_them(tmp_path, manifest, caplog):
    run_dir = tmp_path / "run"
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"PK\x03\x04 cut")
    (folder / "last.prev.ckpt").write_bytes(b"")
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(manifest),
                 "--out", str(run_dir)])
    assert code == 1
    assert "last.ckpt" in caplog.text and "last.prev.ckpt" in caplog.text and "start over" in caplog.text
    # never a silent fresh start over a run's files
    assert (folder / "last.ckpt").read_bytes() == b"PK\x03\x04 cut" and (folder / "last.prev.ckpt").exists()
    with pytest.raises(CheckpointError):
        from avssl.train.checkpoint_io import resolve_resume_checkpoint
        resolve_resume_checkpoint(folder)

"""Atomic checkpoint writes keep the previous file; a write that dies midway leaves the old one whole."""

from __future__ import annotations

import pytest
import torch

from avssl.train import checkpoint_io
from avssl.train.checkpoint_io import CheckpointError, atomic_torch_save, resolve_resume_checkpoint, safe_load


def _ckpt(step: int) -> dict:
    return {"state_dict": {"w": torch.full((3,), float(step))}, "global_step": step}


def test_save_rotates_previous_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save(_ckpt(1), path)
    atomic_torch_save(_ckpt(2), path)
    assert safe_load(path)["global_step"] == 2
    assert safe_load(tmp_path / "last.prev.ckpt")["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.prev.ckpt"]


def test_a_write_that_dies_midway_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_torch_save(_ckpt(1), path)

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt  # the process is stopped in the middle of the write

    monkeypatch.setattr(checkpoint_io.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save(_ckpt(2), path)
    assert safe_load(path)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_resolve_prefers_last_then_previous_then_fails_naming_both(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    assert resolve_resume_checkpoint(folder) is None  # fresh run
    atomic_torch_save(_ckpt(1), folder / "last.ckpt")
    atomic_torch_save(_ckpt(2), folder / "last.ckpt")
    assert resolve_resume_checkpoint(folder).name == "last.ckpt"
    (folder / "last.ckpt").write_bytes(b"")  # zero bytes: e.g. a disk that filled up
    assert resolve_resume_checkpoint(folder).name == "last.prev.ckpt"
    data = (folder / "last.prev.ckpt").read_bytes()
    (folder / "last.prev.ckpt").write_bytes(data[:100])
    with pytest.raises(CheckpointError, match="last.ckpt.*last.prev.ckpt"):
        resolve_resume_checkpoint(folder)


def test_checkpoints_load_without_executing_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    assert "state_dict" not in (checkpoint_io.check_checkpoint(path) or "")
    with pytest.raises(Exception, match="weights_only|Unsupported|global"):
        safe_load(path)

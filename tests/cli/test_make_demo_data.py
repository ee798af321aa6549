"""`avssl make-demo-data`: writes the world, answers from the cache when it is already there, refuses
a foreign folder, regenerates for another seed."""

from __future__ import annotations

import json
import os

import pytest

from avssl.cli import main
from avssl.data.synthetic import world as world_module
from avssl.data.synthetic.config import preset
from avssl.data.synthetic.world import is_complete


def _args(out, *extra):
    return ["make-demo-data", str(out), "--scale", "tiny", "--workers", "1", "--no-progress", *extra]


def test_writes_the_world_then_answers_from_the_cache(tmp_path, capsys, monkeypatch):
    out = tmp_path / "world"
    assert main(_args(out)) == 0
    assert "wrote the demo world" in capsys.readouterr().out
    world = json.loads((out / "world.json").read_text())
    assert world["complete"] and world["seed"] == 0 and world["scale"] == "tiny"
    for rec in world["files"]:
        assert os.path.getsize(out / rec["path"]) > 0, rec["path"]
    assert (out / "ucf" / "ucfTrainTestlist" / "classInd.txt").is_file()
    assert (out / "esc" / "meta" / "esc50.csv").is_file()
    stamp = os.stat(out / world["files"][0]["path"]).st_mtime_ns

    def no_encoding(*args, **kwargs):
        raise AssertionError("a complete world must be reused, not encoded again")

    with monkeypatch.context() as patch:
        patch.setattr(world_module, "write_media", no_encoding)
        assert main(_args(out)) == 0
    assert "already holds a complete demo world" in capsys.readouterr().out
    assert os.stat(out / world["files"][0]["path"]).st_mtime_ns == stamp  # nothing rewritten

    # a different seed is a different world: regenerated in place, the old files replaced
    (out / "clips" / "stale.mp4").write_bytes(b"old")
    assert main(_args(out, "--seed", "1")) == 0
    assert "wrote the demo world" in capsys.readouterr().out
    assert json.loads((out / "world.json").read_text())["seed"] == 1
    assert not (out / "clips" / "stale.mp4").exists()

    # a world with a missing file is not complete: the next run regenerates it
    cfg = preset("tiny", seed=1)
    assert is_complete(out, cfg)
    os.remove(out / world["files"][-1]["path"])
    assert not is_complete(out, cfg)


def test_refuses_a_folder_that_holds_something_else(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(_args(tmp_path)) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(SystemExit) as exit_info:
        main(["make-demo-data", str(tmp_path / "w"), "--scale", "huge"])
    assert exit_info.value.code == 2

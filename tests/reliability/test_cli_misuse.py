"""Bad config values and bad manifests exit 2 naming the key or file; every verb's --help has an example."""

from __future__ import annotations

import importlib

import pytest
from corpus import write_config

from avssl.cli import VERBS, main


@pytest.mark.parametrize("override, named", [
    ("data.batch_size=-4", "data.batch_size"),
    ("method.name=simclr", "method.name"),
])
def test_bad_config_value_exits_2_naming_the_key(tmp_path, manifest, capsys, override, named):
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(manifest),
                 "--out", str(tmp_path / "run"), override])
    assert code == 2
    assert named in capsys.readouterr().err


def test_manifest_without_a_column_exits_2_naming_file_and_column(tmp_path, manifest, capsys):
    lines = manifest.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("has_audio")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines))
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(bad),
                 "--out", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "has_audio" in err


def test_manifest_listing_missing_files_exits_2_naming_one(tmp_path, manifest, capsys):
    moved = tmp_path / "moved.csv"
    moved.write_text(manifest.read_text().replace("v2.mp4", "v2-gone.mp4"))
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(moved),
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "v2-gone.mp4" in capsys.readouterr().err


def test_missing_manifest_exits_2(tmp_path, capsys):
    code = main(["pretrain", "--config", write_config(tmp_path / "c.yaml"), "--data", str(tmp_path / "no.csv"),
                 "--out", str(tmp_path / "run")])
    assert code == 2 and "no.csv" in capsys.readouterr().err


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_help_shows_an_example(verb, capsys):
    importlib.import_module(f"avssl.cli.{VERBS[verb][0]}")  # a verb whose module breaks fails here
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out.lower() and f"avssl {verb}" in out

"""Outputs that cannot be written are refused before the work (exit 2 naming the option and the path),
and a disk that refuses a write during the work gives one line naming the file (exit 1), for every
verb that writes: probe, make-demo-data, extract, eval --out / --report, embed, export, bench, demo."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from corpus import write_config

import avssl.cli.outputs as outputs
from avssl.cli import main
from avssl.cli.outputs import check_output
from avssl.errors import UsageError


def test_a_new_nested_file_or_folder_passes_and_leaves_nothing_behind(tmp_path):
    check_output(tmp_path / "a" / "b" / "f.npz", "--out")
    check_output(tmp_path / "c" / "d", "--out", folder=True)
    assert list(tmp_path.iterdir()) == []  # nothing created, no probe file left


@pytest.mark.parametrize("folder", [False, True])
def test_a_path_below_a_file_is_refused_naming_the_option(tmp_path, folder):
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(UsageError, match=r"--out .*plain\.txt/sub.*is a file, not a folder"):
        check_output(tmp_path / "plain.txt" / "sub" / "out.npz", "--out", folder=folder)


def test_a_folder_where_a_file_is_asked_for_and_the_reverse(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a folder; give a file name"):
        check_output(tmp_path, "--out")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        check_output(tmp_path / "f", "--report", folder=True)


_AS_NOBODY = """
import os, sys
from avssl.cli.outputs import check_output
from avssl.errors import UsageError
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
try:
    check_output(sys.argv[1], "--out")
except UsageError as err:
    print(err)
"""


def test_a_read_only_folder_is_refused_for_an_unprivileged_user():
    # root writes anywhere: check as `nobody` (the child imports avssl first, then drops privileges)
    folder = Path(tempfile.mkdtemp(prefix="avssl-readonly-"))
    try:
        folder.chmod(0o755)
        target = folder / "features.npz"
        proc = subprocess.run([sys.executable, "-c", _AS_NOBODY, str(target)], capture_output=True, text=True,
                              timeout=60, cwd="/")
        if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
            pytest.skip(f"cannot switch user here: {proc.stderr.strip()[-200:]}")
        assert proc.returncode == 0, proc.stderr[-1000:]
        assert f"--out {target}: cannot write in {folder}: Permission denied" in proc.stdout, proc.stdout
        assert list(folder.iterdir()) == []
    finally:
        os.chmod(folder, 0o700)
        folder.rmdir()


@pytest.fixture
def locked(tmp_path, monkeypatch):
    """A folder in which creating any file fails with EACCES (as for a user without write permission)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == folder.resolve():
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)
    return folder


def _features(tmp_path) -> str:
    import numpy as np

    from avssl.evaluate.features import save_features

    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    return save_features(tmp_path / "f.npz", path_column=[f"/v{i}.mp4" for i in range(4)], label=["a", "b"] * 2,
                         split=["train", "train", "test", "test"], group=["0", "1", "2", "3"], video=x,
                         space="backbone")


# verb -> argv given the locked folder, the good manifest, a config and a features file
VERBS = {
    "probe": lambda d, m, c, f: ["probe", str(m.parent), "--out", str(d / "m.csv")],
    "make-demo-data": lambda d, m, c, f: ["make-demo-data", str(d / "world"), "--scale", "tiny"],
    "extract": lambda d, m, c, f: ["extract", "--checkpoint", "random:" + c, "--data", str(m), "--out",
                                   str(d / "f.npz")],
    "eval --out": lambda d, m, c, f: ["eval", "knn", f, "--out", str(d / "r.json")],
    "eval --report": lambda d, m, c, f: ["eval", "knn", f, "--report", str(d / "report")],
    "embed": lambda d, m, c, f: ["embed", str(m.parent), "--model", "random:" + c, "--out", str(d / "e.npz")],
    "export": lambda d, m, c, f: ["export", "random:" + c, "--out", str(d / "export")],
    "bench": lambda d, m, c, f: ["bench", "learn", "--methods", "avts", "--steps", "1", "--out", str(d / "b.json")],
    "demo": lambda d, m, c, f: ["demo", "--out", str(d / "demo"), "--quick"],
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_an_unwritable_output_stops_the_verb_before_its_work(verb, locked, manifest, tmp_path, capsys, monkeypatch):
    import avssl.evaluate.extract as extract

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(extract, "extract_features", no_work)
    argv = VERBS[verb](locked, manifest, write_config(tmp_path / "c.yaml"), _features(tmp_path))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert f"cannot write in {locked}: Permission denied" in err, err[-2000:]
    assert list(locked.iterdir()) == []


def test_a_full_disk_during_the_work_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    import avssl.evaluate.report as report

    def full(result, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "write_json", full)
    out = tmp_path / "r.json"
    code = main(["eval", "knn", _features(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"avssl eval: error: {out}: No space left on device [ENOSPC]" in err
    assert "Traceback" not in err


def test_other_os_errors_keep_their_traceback(monkeypatch, tmp_path):
    import avssl.evaluate.report as report

    def broken(result, path):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(report, "write_json", broken)
    with pytest.raises(OSError, match="Input/output error"):
        main(["eval", "knn", _features(tmp_path), "--out", str(tmp_path / "r.json")])

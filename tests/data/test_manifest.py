"""Manifest: packed strings, columns, filters, label mapping, health summary, CSV/Parquet round trips."""

from __future__ import annotations

import logging
import math
import pickle
import time

import numpy as np
import pytest

from avssl.data.manifest import Manifest
from avssl.data.manifest_schema import COLUMNS
from avssl.data.packed_strings import PackedStrings
from avssl.errors import UsageError

log = logging.getLogger(__name__)


def _row(i: int, **overrides) -> dict:
    row = dict(path=f"/data/c{i % 3}/clip_{i}.mp4", duration=1.5 + i, has_video=i % 4 != 3, has_audio=i % 2 == 0,
               video_fps=25.0, width=320, height=240, num_frames=int((1.5 + i) * 25), audio_sample_rate=16000,
               audio_channels=1, label=f"c{i % 3}", split="train" if i % 5 else "test", group=f"g{i // 2}",
               error="")
    row.update(overrides)
    return row


@pytest.fixture
def manifest() -> Manifest:
    rows = [_row(i) for i in range(10)]
    rows[7] = {"path": "/data/bad/é clip.mp4", "duration": math.nan, "error": "truncated: no 'moov' box"}
    rows[8] = {"path": "/data/bad/zero.mp4", "duration": math.nan, "error": "zero-byte file: the file is empty"}
    rows[9] = {"path": "/data/bad/x.mp4", "duration": math.nan, "error": "truncated: box 'mdat' at byte 40"}
    return Manifest.from_rows(rows)


def test_packed_strings_round_trip_and_take_unicode():
    values = ["", "a", "é clip, with comma", "日本語.mp4", "", "z" * 300]
    packed = PackedStrings.from_strings(values)
    assert list(packed) == values and len(packed) == 6
    assert packed[3] == "日本語.mp4" and packed[-1] == "z" * 300
    assert packed.take(np.array([5, 3, 3, 0])).to_list() == ["z" * 300, "日本語.mp4", "日本語.mp4", ""]
    assert packed.take(np.array([], dtype=np.int64)).to_list() == []
    with pytest.raises(IndexError):
        packed[6]


def test_storage_is_a_few_numpy_arrays_not_per_row_objects(manifest):
    for name in COLUMNS:
        col = manifest.column(name)
        arrays = [col.blob, col.offsets] if isinstance(col, PackedStrings) else [col]
        assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays), name
    assert pickle.loads(pickle.dumps(manifest)) == manifest


def test_row_access_returns_plain_values(manifest):
    row = manifest[2]
    assert row.path == "/data/c2/clip_2.mp4" and row.duration == 3.5 and row.num_frames == 87
    assert type(row.has_audio) is bool and type(row.width) is int and row.error == ""
    assert manifest[-3].path == "/data/bad/é clip.mp4" and math.isnan(manifest[-3].duration)
    with pytest.raises(IndexError):
        manifest[10]
    assert [r.path for r in manifest[np.array([4, 1])]] == ["/data/c1/clip_4.mp4", "/data/c1/clip_1.mp4"]


def test_filters_by_modality_split_and_label(manifest):
    # rows 0-6 have no error; has_video unless i % 4 == 3, has_audio on even rows: row 3 holds neither
    assert manifest.usable_mask("any").tolist() == [True] * 3 + [False] + [True] * 3 + [False] * 3
    assert [r.path[-7:] for r in manifest.filter("audio")] == ["p_0.mp4", "p_2.mp4", "p_4.mp4", "p_6.mp4"]
    assert len(manifest.filter("video")) == 6
    assert [r.path[-7:] for r in manifest.filter("both")] == ["p_0.mp4", "p_2.mp4", "p_4.mp4", "p_6.mp4"]
    assert [r.path[-7:] for r in manifest.filter("video", split="test")] == ["p_0.mp4", "p_5.mp4"]
    assert [r.label for r in manifest.filter("any", label=["c1", "c2"])] == ["c1", "c2", "c1", "c2"]
    assert len(manifest.filter(None)) == 10
    with pytest.raises(ValueError, match="modality"):
        manifest.filter("smell")


def test_label_index_is_sorted_and_ids_follow_it(manifest):
    assert manifest.label_index() == {"c0": 0, "c1": 1, "c2": 2}
    assert manifest.label_ids().tolist() == [0, 1, 2, 0, 1, 2, 0, -1, -1, -1]
    with pytest.raises(ValueError, match="c2"):
        manifest.label_ids({"c0": 0, "c1": 1})


def test_health_summary_counts_and_groups_reasons(manifest):
    health = manifest.summary()
    assert (health.files, health.readable, health.unreadable) == (10, 7, 3)
    assert health.hours == pytest.approx(sum(1.5 + i for i in range(7)) / 3600)
    assert (health.with_audio, health.without_audio, health.with_video) == (4, 3, 6)
    assert health.reasons == {"truncated": 2, "zero-byte file": 1}
    text = health.format()
    assert "unreadable: 3" in text and "truncated" in text


@pytest.mark.parametrize("name", ["m.csv", "m.parquet"])
def test_save_load_round_trip(manifest, tmp_path, name):
    out = manifest.save(tmp_path / "sub" / name)
    loaded = Manifest.load(out)
    assert loaded == manifest
    assert loaded[7].path == "/data/bad/é clip.mp4" and loaded[7].error == "truncated: no 'moov' box"


def test_load_resolves_relative_paths_against_the_manifest_folder(tmp_path):
    header = ",".join(c for c in COLUMNS if c not in ("label", "split", "group", "error"))
    (tmp_path / "m.csv").write_text(header + "\nclips/a.mp4,2.0,1,0,25,64,48,50,0,0\n")
    loaded = Manifest.load(tmp_path / "m.csv")
    assert loaded[0].path == str(tmp_path / "clips" / "a.mp4")
    assert (loaded[0].label, loaded[0].error, loaded[0].width, loaded[0].has_video) == ("", "", 64, True)


def test_relative_paths_are_saved_absolute_so_they_load_as_they_were_meant(tmp_path, monkeypatch, manifest):
    """A path relative to the working folder must not be re-read relative to the manifest's folder."""
    monkeypatch.chdir(tmp_path)
    rows = [dict(manifest[0].__dict__, path="clips/a.mp4")]
    saved = Manifest.from_rows(rows).save(tmp_path / "deeper" / "m.csv")
    assert Manifest.load(saved)[0].path == str(tmp_path / "clips" / "a.mp4")


def test_load_names_the_file_and_the_missing_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("path,has_video,has_audio\n/a.mp4,1,1\n")
    with pytest.raises(UsageError, match=r"bad\.csv: manifest is missing column\(s\) duration, video_fps"):
        Manifest.load(bad)


def test_load_names_line_and_column_of_a_bad_value(tmp_path, manifest):
    path = manifest.save(tmp_path / "m.csv")
    lines = open(path, encoding="utf-8").read().splitlines()
    lines[3] = lines[3].replace(",320,", ",wide,", 1)
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"m\.csv:4: column 'width' has 'wide', expected an integer"):
        Manifest.load(tmp_path / "m.csv")


def test_unknown_extension_and_missing_file_are_usage_errors(tmp_path, manifest):
    with pytest.raises(UsageError, match=r"m\.json: a manifest must end in \.csv or \.parquet"):
        manifest.save(tmp_path / "m.json")
    with pytest.raises(UsageError, match="nothere.csv: manifest not found"):
        Manifest.load(tmp_path / "nothere.csv")


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, manifest, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(UsageError, match=r"pip install 'avssl\[parquet\]'"):
        manifest.save(tmp_path / "m.parquet")


def test_100k_row_csv_loads_in_seconds(tmp_path):
    n = 100_000
    rng = np.random.default_rng(0)
    index = np.arange(n)
    columns = {
        "path": [f"/datasets/kinetics/train/class_{i % 400:03d}/yt{i:08d}_000010_000020.mp4" for i in range(n)],
        "duration": rng.uniform(1, 10, n), "has_video": index % 7 != 0, "has_audio": index % 2 == 0,
        "video_fps": np.full(n, 29.97), "width": np.full(n, 340), "height": np.full(n, 256),
        "num_frames": rng.integers(30, 300, n), "audio_sample_rate": np.full(n, 44100),
        "audio_channels": np.full(n, 2), "label": [f"class_{i % 400:03d}" for i in range(n)],
        "split": np.where(index % 10 == 0, "val", "train").tolist(), "group": [f"yt{i:08d}" for i in range(n)],
        "error": ["" if i % 100 else "cannot open: bad data" for i in range(n)],
    }
    path = Manifest(columns).save(tmp_path / "big.csv")
    start = time.perf_counter()
    loaded = Manifest.load(path)
    seconds = time.perf_counter() - start
    log.info("loaded a %d-row CSV manifest in %.2f s (%.1f MB in memory)", n, seconds, loaded.nbytes / 1e6)
    assert len(loaded) == n and loaded[12345].path == columns["path"][12345]
    assert loaded[99_999].duration == columns["duration"][99_999]
    assert loaded.summary().unreadable == 1000
    assert seconds < 20, f"100k rows took {seconds:.1f} s"

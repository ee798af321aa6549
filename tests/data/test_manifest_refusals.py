"""Manifests that a reader would otherwise read wrongly without a word: a column twice ("last one wins"),
a flag of 5, a null path, a usable row without a duration, a field over the CSV limit; and a
byte-order mark that must not hide the `path` column. Each refusal names the file, and the row or column."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from avssl.data.manifest import Manifest
from avssl.errors import UsageError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [{"path": f"/data/v{i}.mp4", "duration": 2.0, "has_video": True, "has_audio": True, "video_fps": 25.0,
         "width": 64, "height": 48, "num_frames": 50, "audio_sample_rate": 16000, "audio_channels": 1,
         "label": "a", "split": "train"} for i in range(3)]


@pytest.fixture
def good(tmp_path):
    return Manifest.from_rows(ROWS).save(tmp_path / "m.csv"), Manifest.from_rows(ROWS).save(tmp_path / "m.parquet")


def edit_csv(source, target, edit):
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with open(target, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return target


def edit_parquet(source, target, name, values, type_=None):
    table = pq.read_table(source)
    i = table.column_names.index(name)
    pq.write_table(table.set_column(i, name, pa.array(values, type=type_)), target)
    return target


def set_cell(row, col, value):
    def edit(rows):
        rows[row][col] = value
    return edit


def test_a_repeated_column_is_refused(good, tmp_path):
    def twice(rows):
        for row in rows:
            row.append(row[0])
    bad = edit_csv(good[0], tmp_path / "two.csv", twice)
    with pytest.raises(UsageError, match=r"two\.csv: column\(s\) path appear more than once"):
        Manifest.load(bad)
    table = pq.read_table(good[1])
    pq.write_table(table.append_column("path", table.column("path")), tmp_path / "two.parquet")
    with pytest.raises(UsageError, match=r"two\.parquet: column\(s\) path appear more than once"):
        Manifest.load(tmp_path / "two.parquet")


def test_a_parquet_flag_must_be_0_or_1(good, tmp_path):
    bad = edit_parquet(good[1], tmp_path / "flag.parquet", "has_video", [1, 5, 1], pa.int64())
    with pytest.raises(UsageError, match=r"flag\.parquet:3: column 'has_video' has 5, expected 0/1"):
        Manifest.load(bad)
    bad = edit_parquet(good[1], tmp_path / "null.parquet", "num_frames", [50, None, 50], pa.int64())
    with pytest.raises(UsageError, match=r"null\.parquet:3: column 'num_frames' has nan, expected an integer"):
        Manifest.load(bad)


def test_a_null_or_empty_path_is_refused(good, tmp_path):
    bad = edit_parquet(good[1], tmp_path / "p.parquet", "path", ["/a.mp4", None, "/c.mp4"], pa.string())
    with pytest.raises(UsageError, match=r"p\.parquet:3: empty or null 'path' \(row 1\)"):
        Manifest.load(bad)
    bad = edit_csv(good[0], tmp_path / "p.csv", set_cell(3, 0, ""))
    with pytest.raises(UsageError, match=r"p\.csv:4: empty or null 'path' \(row 2\)"):
        Manifest.load(bad)


@pytest.mark.parametrize("value", ["", "nan", "inf", "-1", "0"])
def test_a_usable_row_needs_a_positive_duration(good, tmp_path, value):
    bad = edit_csv(good[0], tmp_path / "d.csv", set_cell(2, 1, value))
    with pytest.raises(UsageError, match=r"d\.csv:3: column 'duration' .* row without an error \(row 1\)"):
        Manifest.load(bad)
    bad = edit_parquet(good[1], tmp_path / "d.parquet", "duration", [2.0, float(value or "nan"), 2.0])
    with pytest.raises(UsageError, match=r"d\.parquet:3: column 'duration' .* \(row 1\)"):
        Manifest.load(bad)


def test_a_row_with_an_error_may_lack_a_duration(good, tmp_path):
    def failed(rows):
        rows[2][1], rows[2][-1] = "", "decode error: broken"
    assert np.isnan(Manifest.load(edit_csv(good[0], tmp_path / "e.csv", failed))[1].duration)


def test_a_field_over_the_csv_limit_is_refused_naming_the_line(good, tmp_path):
    bad = edit_csv(good[0], tmp_path / "long.csv", set_cell(2, 10, "x" * 200_000))
    with pytest.raises(UsageError, match=r"long\.csv:3: not a readable CSV line \(field larger than field limit"):
        Manifest.load(bad)


def test_a_byte_order_mark_does_not_hide_the_path_column(good, tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_text(Path(good[0]).read_text(encoding="utf-8"), encoding="utf-8-sig")
    assert Manifest.load(bom)[0].path == "/data/v0.mp4"

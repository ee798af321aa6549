"""Features files: round trip, and errors that name the file and the array at fault."""

from __future__ import annotations

import numpy as np
import pytest

from avssl.errors import UsageError
from avssl.evaluate.features import default_modality, load_features, save_features


def _columns(n):
    return dict(path_column=[f"/d/c{i}.mp4" for i in range(n)], label=["a", "b"] * (n // 2),
                split=["train"] * (n - 2) + ["test"] * 2, group=[f"g{i // 2}" for i in range(n)])


def test_round_trip_keeps_values_and_loads_without_pickle(tmp_path):
    video = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    path = save_features(tmp_path / "f.npz", video=video, **_columns(6))
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["group", "label", "path", "split", "video"]
    f = load_features(path)
    np.testing.assert_array_equal(f.video, video)
    assert f.audio is None and f.modalities == ("video",)
    assert f.split.tolist() == ["train"] * 4 + ["test"] * 2
    assert f.groups()[3] == "g1"
    assert default_modality(f, None) == "video"
    with pytest.raises(UsageError, match=r"f\.npz: no 'audio' array"):
        f.matrix("audio")


def test_missing_array_is_named_with_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, video=np.zeros((2, 3), np.float32), path=np.array(["a", "b"]), label=np.array(["x", "y"]))
    with pytest.raises(UsageError, match=r"bad\.npz: features file lacks array\(s\) split, group"):
        load_features(path)


def test_row_count_mismatch_and_nonfinite_rows_are_named(tmp_path):
    cols = _columns(4)
    with pytest.raises(UsageError, match=r"x\.npz: array 'audio' has 3 rows, 'path' has 4"):
        save_features(tmp_path / "x.npz", audio=np.zeros((3, 2)), **cols)
    audio = np.zeros((4, 2))
    audio[2, 1] = np.nan
    with pytest.raises(UsageError, match=r"'audio' has non-finite values in 1 row\(s\), first row 2 \(/d/c2.mp4\)"):
        save_features(tmp_path / "x.npz", audio=audio, **cols)
    with pytest.raises(UsageError, match="lacks both 'video' and 'audio'"):
        save_features(tmp_path / "x.npz", **cols)
    with pytest.raises(UsageError, match=r"missing\.npz: features file not found"):
        load_features(tmp_path / "missing.npz")


def test_the_feature_space_is_recorded_and_read_back(tmp_path):
    import numpy as np

    from avssl.evaluate.features import load_features, save_features

    x = np.ones((2, 3), dtype=np.float32)
    columns = dict(path_column=["a", "b"], label=["x", "y"], split=["train", "test"], group=["", ""])
    joint = load_features(save_features(tmp_path / "j.npz", **columns, video=x, audio=x, space="embedding"))
    old = load_features(save_features(tmp_path / "o.npz", **columns, video=x))
    assert joint.space == "embedding" and joint.take(np.array([1])).space == "embedding" and old.space == ""

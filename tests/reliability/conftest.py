"""Fixtures of the reliability tests."""

from __future__ import annotations

import pytest
from corpus import write_good


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """A manifest of four good 2 s mp4 files."""
    from avssl.data.probing import build_manifest, probe_paths

    folder = tmp_path_factory.mktemp("videos")
    paths = [write_good(folder / f"v{i}.mp4", seconds=2.0, seed=i) for i in range(4)]
    path = folder / "train.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(path)
    return path

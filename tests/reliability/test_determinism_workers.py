"""The same seed and config give the same first 20 losses on the CPU, with 0 and with 2 loader workers."""

from __future__ import annotations

import csv

import pytest
from corpus import write_config, write_good

from avssl.cli import main


@pytest.mark.slow
def test_first_20_losses_repeat_with_0_and_2_workers(tmp_path):
    from avssl.data.probing import build_manifest, probe_paths

    paths = [write_good(tmp_path / f"v{i}.mp4", seconds=2.0, seed=i) for i in range(6)]
    manifest = tmp_path / "train.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    config = write_config(tmp_path / "c.yaml", trainer={"max_steps": 20, "checkpoint_every_n_steps": 20})
    curves = []
    for name, workers in (("a", 0), ("b", 0), ("c", 2)):
        run = tmp_path / name
        assert main(["pretrain", "--config", config, "--data", str(manifest), "--out", str(run),
                     f"data.num_workers={workers}"]) == 0
        with open(run / "metrics.csv", newline="") as f:
            curves.append([float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")])
    assert len(curves[0]) == 20
    assert len(set(curves[0])) > 10, "the loss changes from step to step"
    assert curves[1] == curves[0], "the same run twice"
    assert curves[2] == curves[0], "loader workers change nothing"

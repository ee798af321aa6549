"""Every method's tiny config pretrains through `avssl pretrain` on the demo world and writes a run."""

from __future__ import annotations

import csv
import math

import pytest

from avssl.cli import main
from avssl.data.discovery import discover_media
from avssl.data.probing import build_manifest, probe_paths
from avssl.methods.registry import method_class
from avssl.train.checkpoint_io import safe_load

# smaller than the tiny configs so that four runs stay cheap; same code paths
SMALL = ["trainer.max_steps=3", "data.num_workers=0", "data.video_augment.size=32", "trainer.progress_bar=false",
         "trainer.log_every_n_steps=1", "trainer.checkpoint_every_n_steps=2"]


@pytest.fixture(scope="module")
def demo_manifest(tmp_path_factory, tiny_world):
    """The demo world's unlabeled pretraining data: short clips and the long movies."""
    paths = [str(p) for p in discover_media([str(tiny_world / "clips"), str(tiny_world / "movies")])]
    manifest = tmp_path_factory.mktemp("demo_manifest") / "pretrain.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    return manifest


@pytest.mark.slow
@pytest.mark.parametrize("method, extra", [
    ("avts", ["data.batch_size=4"]),
    ("temporal-av", ["data.batch_size=4"]),
    ("movie-nce", []),  # its batch is the movies x clips plan of its config
    ("avcl", ["data.batch_size=4"]),
])
def test_method_writes_config_checkpoint_and_metrics(tmp_path, demo_manifest, method, extra):
    run = tmp_path / "run"
    code = main(["pretrain", "--config", f"{method}-tiny", "--data", str(demo_manifest), "--out", str(run),
                 *SMALL, *extra])
    assert code == 0
    assert (run / "config.yaml").is_file()
    checkpoint = safe_load(run / "checkpoints" / "last.ckpt")
    assert checkpoint["avssl_method"] == method
    assert checkpoint["global_step"] == 3
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert all(math.isfinite(float(r["train/loss"])) for r in rows)
    # the loss terms the method declares (the demo report plots them) are logged
    terms = [f"train/{t}" for t in method_class(method).loss_terms if t != "video_video_nce"]
    assert all(math.isfinite(float(r[t])) for r in rows for t in terms)
    assert terms or method == "avts"  # its margin loss is a single term
    # the collapse watch (avssl.methods.collapse): fresh heads give distinct embeddings
    assert all(0 <= float(r[f"train/repeated_{side}"]) < 0.5 for r in rows for side in ("video", "audio"))

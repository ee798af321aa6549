"""A pretraining run writes config.yaml, checkpoints/last.ckpt and metrics.csv, and learns."""

from __future__ import annotations

from train_support import TINY, losses, tiny

from avssl.config.schema import config_to_dict, load_config
from avssl.train.checkpoint_io import safe_load


def test_run_writes_config_checkpoint_and_metrics(uninterrupted):
    saved = config_to_dict(load_config(uninterrupted / "config.yaml"))
    assert saved["probe"]["every_n_steps"] == 3 and saved["probe"]["manifest"].endswith("probe.csv")
    assert {k: v for k, v in saved.items() if k != "probe"} == {
        k: v for k, v in config_to_dict(tiny()).items() if k != "probe"}

    checkpoint = safe_load(uninterrupted / "checkpoints" / "last.ckpt")  # weights_only=True loads it
    assert checkpoint["global_step"] == TINY["trainer"]["max_steps"]
    assert checkpoint["avssl_method"] == "avts"
    assert checkpoint["avssl_config"] == saved, "the resolved config is in the checkpoint"
    assert any(k.startswith("video_encoder.") for k in checkpoint["state_dict"])
    assert checkpoint["optimizer_states"][0]["state"], "optimizer moments are saved"
    assert checkpoint["lr_schedulers"][0]["last_epoch"] == 6
    # 8 files, batch 4: 2 batches per epoch, 6 steps = 3 whole epochs
    loader_state = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state["sampler"]["epoch"] == 2 and loader_state["sampler"]["start_index"] == 8
    callbacks = checkpoint["callbacks"]
    assert any(k.startswith("RngStates") for k in callbacks)
    assert callbacks["FailurePolicy"]["count"] == 0
    # the previous checkpoint (step 3) is kept
    assert safe_load(uninterrupted / "checkpoints" / "last.prev.ckpt")["global_step"] == 3

    per_step = losses(uninterrupted / "metrics.csv")
    assert sorted(per_step) == list(range(6))
    assert sum(per_step[s] for s in (3, 4, 5)) / 3 < per_step[0] - 0.1, "training lowers the loss"


def test_clip_keys_and_rate_are_logged(uninterrupted):
    import csv

    with open(uninterrupted / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"train/loss", "train/clips_per_s", "data/failures", "epoch"} <= set(rows[0])
    assert all(float(r["data/failures"]) == 0 for r in rows)
    assert float(rows[-1]["train/clips_per_s"]) > 0


def test_online_probe_logs_knn_accuracy(uninterrupted):
    import csv

    with open(uninterrupted / "metrics.csv", newline="") as f:
        values = [float(r["probe/knn_top1"]) for r in csv.DictReader(f) if r.get("probe/knn_top1")]
    assert len(values) == 2  # steps 3 and 6
    assert all(v in {i / 8 for i in range(9)} for v in values), "a share of the 8 probe clips"


def test_knn_top1_against_hand_computation():
    import torch

    from avssl.train.probe import knn_top1

    # 1-D directions on the unit circle: angles 0, 10, 20 degrees (class 0) and 90, 100 (class 1), 25 (class 1)
    angles = torch.tensor([0.0, 10.0, 20.0, 90.0, 100.0, 25.0]) * torch.pi / 180
    features = torch.stack([angles.cos(), angles.sin()], dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    # k=1: nearest other of each: 10->0 ok, 0->10 ok, 20->25 wrong, 90->100 ok, 100->90 ok, 25->20 wrong
    assert knn_top1(features, labels, k=1) == 4 / 6
    # k=3 majority: 0:{10,20,25}->0 ok; 10:{0,20,25}->0 ok; 20:{25,10,0}->0 ok; 90:{100,25,20}->? 1,1,0 -> 1 ok;
    # 100:{90,25,20} -> 1,1,0 -> 1 ok; 25:{20,10,0} -> 0 wrong
    assert knn_top1(features, labels, k=3) == 5 / 6


def test_bundled_config_on_the_demo_world(tmp_path, tiny_world):
    """`avssl pretrain --config avts-tiny` on a manifest of the demo world (clips, movies, UCF-style set)."""
    from avssl.cli import main
    from avssl.data.discovery import discover_media
    from avssl.data.probing import build_manifest, probe_paths

    paths = [str(p) for p in discover_media([str(tiny_world)])]
    manifest = tmp_path / "demo.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    code = main(["pretrain", "--config", "avts-tiny", "--data", str(manifest), "--out", str(tmp_path / "run"),
                 "trainer.max_steps=3", "data.batch_size=4", "data.num_workers=0", "data.video_augment.size=16",
                 "data.clip.frames=4", "trainer.progress_bar=false", "trainer.log_every_n_steps=1"])
    assert code == 0
    assert sorted(losses(tmp_path / "run" / "metrics.csv")) == [0, 1, 2]
    assert safe_load(tmp_path / "run" / "checkpoints" / "last.ckpt")["avssl_config"]["model"]["video"] == {
        "name": "r2plus1d_18-tiny"}

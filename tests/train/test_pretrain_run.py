"""A pretraining run writes config.yaml, checkpoints/last.ckpt and metrics.csv, and learns."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from train_support import TINY, losses, tiny

from avssl.config.bundled import BUNDLED_CONFIGS as CONFIGS
from avssl.config.schema import config_to_dict
from avssl.data.probing import build_manifest, probe_paths
from avssl.errors import UsageError
from avssl.media.writer import write_media
from avssl.methods.configs import load_config
from avssl.train.checkpoint_format import safe_load


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

    with open(uninterrupted / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {"train/loss", "train/clips_per_s", "data/failures", "epoch"} <= set(rows[0])
    assert all(float(r["data/failures"]) == 0 for r in rows)
    assert float(rows[-1]["train/clips_per_s"]) > 0


def test_online_probe_logs_knn_accuracy(uninterrupted):

    with open(uninterrupted / "metrics.csv", newline="") as f:
        values = [float(r["probe/knn_top1"]) for r in csv.DictReader(f) if r.get("probe/knn_top1")]
    assert len(values) == 2  # steps 3 and 6
    assert all(v in {i / 8 for i in range(9)} for v in values), "a share of the 8 probe clips"


def test_online_probe_warns_once_when_k_is_clamped_to_the_other_clips(monkeypatch, caplog):
    """k >= N: every other clip votes, so each prediction is the majority class of the rest."""
    import logging
    from types import SimpleNamespace

    import torch

    from avssl.train import probe

    labels = torch.tensor([0, 0, 1, 1])
    monkeypatch.setattr(probe, "load_probe_clips", lambda path, config: (torch.zeros(4, 3), labels))
    config = SimpleNamespace(probe=SimpleNamespace(manifest="probe.csv", k=5))
    with caplog.at_level(logging.WARNING, logger="avssl.train.probe"):
        callback = probe.OnlineProbe(config)
    assert callback.k == 3
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "online probe: probe.k=5 but only 4 clips: k is clamped to 3, so every other clip votes and each "
        "prediction is the majority class of the rest"]
    caplog.clear()
    config.probe.k = 3
    with caplog.at_level(logging.WARNING, logger="avssl.train.probe"):
        assert probe.OnlineProbe(config).k == 3
    assert not caplog.records


def test_bundled_config_on_the_demo_world(tmp_path, tiny_world):
    """`avssl pretrain --config avts-tiny` on a manifest of the demo world (clips, movies, UCF-style set)."""
    from avssl.cli import main
    from avssl.data.discovery import discover_media


    paths = [str(p) for p in discover_media([str(tiny_world)])]
    manifest = tmp_path / "demo.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    code = main(["pretrain", "--config", "avts-tiny", "--data", str(manifest), "--out", str(tmp_path / "run"),
                 "trainer.max_steps=3", "data.batch_size=4", "data.num_workers=0", "data.video_augment.size=16",
                 "data.clip.frames=4", "method.audio_time_bins=3",  # 0.5 s: the tiny audio map's 3 steps
                 "trainer.progress_bar=false", "trainer.log_every_n_steps=1"])
    assert code == 0
    assert sorted(losses(tmp_path / "run" / "metrics.csv")) == [0, 1, 2]
    assert safe_load(tmp_path / "run" / "checkpoints" / "last.ckpt")["avssl_config"]["model"]["video"] == {
        "name": "mc3_18-tiny"}


def test_avcl_trains_on_files_without_audio_and_avts_leaves_them_out(tmp_path, videos):
    """AVCL keeps video-only files (their audio masked), so a manifest of 4 files with audio and 4
    without fills a batch of 8 for avcl; avts needs both streams and refuses the same batch."""
    from avssl.data.manifest import Manifest
    from avssl.train.engine import pretrain

    silent = []
    for i in range(4):
        path = tmp_path / f"silent{i}.mp4"
        frames = np.full((75, 48, 64, 3), 40 * i, dtype=np.uint8)
        write_media(str(path), frames, 25)
        silent.append(str(path))
    paths = videos[:4] + silent
    manifest = tmp_path / "mixed.csv"
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    assert int(Manifest.load(manifest).usable_mask("both").sum()) == 4
    overrides = ["trainer.max_steps=2", "data.batch_size=8", "data.num_workers=0", "data.clip.frames=4",
                 "data.video_augment.size=16", "trainer.log_every_n_steps=1"]
    avcl = load_config(CONFIGS / "avcl-tiny.yaml", overrides)
    pretrain(avcl, manifest, tmp_path / "avcl")
    with open(tmp_path / "avcl" / "metrics.csv", newline="") as f:
        missing = [float(r["train/audio_missing"]) for r in csv.DictReader(f) if r.get("train/audio_missing")]
    assert missing and all(m > 0 for m in missing)  # every batch of 8 holds the 4 silent files
    avts = load_config(CONFIGS / "avts-tiny.yaml", overrides)
    with pytest.raises(UsageError, match="data.batch_size': 8 is more than the 4 usable files"):
        pretrain(avts, manifest, tmp_path / "avts")

"""AVTS learns audio-visual synchrony: after a short training on demo-world clips, the model tells
in-sync from out-of-sync pairs of held-out clips better than chance, and the same model untrained
does not."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch

from avssl.data.dataset import usable_table
from avssl.data.manifest import Manifest
from avssl.data.probing import build_manifest, probe_paths
from avssl.data.synthetic import generate_world, preset
from avssl.evaluate.sync import SyncPairs, sync_accuracy, sync_decisions, sync_pairs
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class
from avssl.train.data import build_loader

TRAIN_CLIPS = 34
HELD_OUT_CLIPS = 16
WINDOWS_PER_CLIP = 12  # 16 x 12 = 192 hard pairs, 384 easy pairs
STEPS = 300
# Pass marks. Under chance (each pair a fair coin) the binomial upper tail P(X >= k) is 5.2e-5 for
# 58 % of all 576 pairs (k = 335), 8.2e-3 for 56 % of the 384 easy pairs (k = 216) and 4.8e-2 for
# 56 % of the 192 hard pairs (k = 108). Windows of one clip overlap, so the pairs are not fully
# independent and the true tails are somewhat fatter. Measured at seed 0 (avts-tiny: MC3 with video
# time bins): untrained 0.50 / 0.49 easy / hard, trained 0.60 / 0.72 (0.64 over all pairs). With MC3
# the model starts later than with R(2+1)D's pooled map (0.51 after 100 steps, where R(2+1)D had
# reached 0.67 / 0.65) and learns more by 2000 (docs/methods.md), so the test trains 300 steps.
PASS_ALL = 0.58
PASS_EACH = 0.56


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny-scale demo world with 50 clips of 6 s (each its own backdrop, ambience and objects)."""
    root = tmp_path_factory.mktemp("avts_sync_world")
    cfg = preset("tiny", seed=0, n_clips=TRAIN_CLIPS + HELD_OUT_CLIPS, clip_seconds=6.0)
    return root, generate_world(root, cfg, scale="custom", workers=2, progress=False)


def clip_records(world_info: dict) -> list[dict]:
    return [f for f in world_info["files"] if f["kind"] == "clip"]


def eventful(record: dict, start: float, seconds: float) -> bool:
    """Whether an impact (floor or wall) falls inside [start, start + seconds)."""
    return any(start <= e["time"] < start + seconds for e in record["events"] if e["kind"] in ("floor", "wall"))


def eventful_decisions(records: list[dict], pairs: SyncPairs, config) -> tuple[torch.Tensor, torch.Tensor]:
    """Which easy and which hard pairs have an impact in the video window (or, for hard pairs, in the
    shifted audio window): synchrony is undecidable in a window where nothing sounds or hits."""
    clip = config.data.clip
    flags = []
    for row, (video_start, shifted_start) in enumerate(pairs.starts):
        record = records[int(pairs.source[row])]
        flag = eventful(record, video_start, clip.video_seconds)
        if row % 2:
            flag = flag or eventful(record, shifted_start, clip.audio_window)
        flags.append(flag)
    flags = torch.tensor(flags)
    return flags, flags[1::2]


def accuracy(method, pairs: SyncPairs, records: list[dict], config) -> dict[str, float]:
    result = sync_accuracy(method, pairs)
    decisions = sync_decisions(method, pairs)
    easy_ev, hard_ev = eventful_decisions(records, pairs, config)
    result["easy_eventful"] = decisions["easy"][easy_ev].float().mean().item()
    result["hard_eventful"] = decisions["hard"][hard_ev].float().mean().item()
    return result


@pytest.mark.slow
def test_trained_avts_tells_sync_from_offset_on_held_out_clips(world, tmp_path):
    root, info = world
    records = clip_records(info)
    assert len(records) == TRAIN_CLIPS + HELD_OUT_CLIPS
    train_paths = [str(root / r["path"]) for r in records[:TRAIN_CLIPS]]
    manifest: Manifest = build_manifest(train_paths, probe_paths(train_paths, workers=0, progress=False))
    table, left_out = usable_table(manifest)
    assert left_out == 0

    # the bundled tiny recipe, shortened: the curriculum reaches hard negatives by step 61
    config = load_config("configs/avts-tiny.yaml", [f"trainer.max_steps={STEPS}"])
    torch.manual_seed(0)
    method = method_class("avts")(config)
    held_out = records[TRAIN_CLIPS:]
    pairs = sync_pairs([str(root / r["path"]) for r in held_out], [r["duration"] for r in held_out], config,
                       windows_per_file=WINDOWS_PER_CLIP)
    untrained = accuracy(method, pairs, held_out, config)
    assert method.training

    loader = build_loader(method, table, config, rank=0, world_size=1)
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|log_every_n_steps).*")
        trainer.fit(method, train_dataloaders=loader)
    assert trainer.global_step == STEPS
    assert method.curriculum.hard_share(trainer.global_step - 1) > 0  # hard negatives were trained on

    trained = accuracy(method, pairs, held_out, config)
    report = f"untrained {untrained}, trained {trained}"
    print(report)
    assert untrained["all"] < PASS_EACH, report
    assert trained["all"] >= PASS_ALL, report
    assert trained["easy"] >= PASS_EACH and trained["hard"] >= PASS_EACH, report

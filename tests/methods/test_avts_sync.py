"""AVTS learns audio-visual synchrony: after a short training on demo-world clips, the model tells
in-sync from out-of-sync pairs of held-out clips better than chance, and the same model untrained
does not."""

from __future__ import annotations

import warnings

import lightning as L
import numpy as np
import pytest
import torch

from avssl.config.schema import load_config
from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.manifest import Manifest
from avssl.data.probing import build_manifest, probe_paths
from avssl.data.sampling import ClipSampler, WindowSpec
from avssl.data.synthetic import generate_world, preset
from avssl.media import MediaReader
from avssl.methods.registry import method_class
from avssl.train.data import build_loader, usable_table

TRAIN_CLIPS = 34
HELD_OUT_CLIPS = 16
WINDOWS_PER_CLIP = 12  # 16 x 12 = 192 hard pairs, 384 easy pairs
STEPS = 100
# Pass marks. Under chance (each pair a fair coin) the binomial upper tail P(X >= k) is 5.2e-5 for
# 58 % of all 576 pairs (k = 335), 8.2e-3 for 56 % of the 384 easy pairs (k = 216) and 4.8e-2 for
# 56 % of the 192 hard pairs (k = 108). Windows of one clip overlap, so the pairs are not fully
# independent and the true tails are somewhat fatter. Measured at seed 0: untrained 0.51 / 0.51,
# trained 0.67 easy / 0.65 hard (0.66 over all pairs); at seed 1 trained 0.59 / 0.67 (0.62).
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


def held_out_pairs(root, records: list[dict], config) -> dict[str, torch.Tensor]:
    """Centre-cropped evaluation windows of the held-out clips.

    Row 2k is a synchronised pair (video, audio at the same start); row 2k + 1 is a hard pair: a
    video window, its in-sync audio, and (in `hard_audio`) the same file's audio shifted by at least
    min_offset. Returns uint8 video [N, 3, T, S, S], float audio / hard_audio [N, samples], source [N],
    and eventful [N] (an impact in the video window or in the shifted audio window).
    """
    clip, params = config.data.clip, config.method.params
    spec = WindowSpec(clip.video_seconds, clip.audio_window, clip.fps)
    sampler = ClipSampler(np.array([r["duration"] for r in records]), spec, seed=12345,
                          min_offset=params.min_offset, max_offset=params.max_offset)
    video, audio, hard_audio, source, has_event = [], [], [], [], []
    for i, record in enumerate(records):
        with MediaReader(str(root / record["path"])) as reader:
            for k in range(WINDOWS_PER_CLIP):
                sync, hard = sampler.sync_pair(i, k), sampler.hard_negative(i, k)
                for start in (sync.video_start, hard.video_start):
                    video.append(read_video_clip(reader, start, clip.frames, clip.fps, config.data.video_augment, None))
                    audio.append(read_audio_clip(reader, start, clip.audio_window, clip.sample_rate))
                    source.append(i)
                shifted = read_audio_clip(reader, hard.audio_start, clip.audio_window, clip.sample_rate)
                hard_audio += [torch.zeros_like(shifted), shifted]
                has_event += [eventful(record, sync.video_start, clip.video_seconds),
                              eventful(record, hard.video_start, clip.video_seconds)
                              or eventful(record, hard.audio_start, clip.audio_window)]
    return {"video": torch.stack(video), "audio": torch.stack(audio), "hard_audio": torch.stack(hard_audio),
            "source": torch.tensor(source), "eventful": torch.tensor(has_event)}


def sync_accuracy(method, pairs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of pairs where the in-sync audio is nearer the video than the out-of-sync audio.

    easy: every video against the audio of the window at the same place in the next held-out clip;
    hard: the hard pairs' videos against their own shifted audio; all: both together. `*_eventful` restrict to windows
    where an impact happens (synchrony is undecidable in a window where nothing sounds or hits).
    Leaves the method in the mode it found it in (Lightning keeps a module's mode when fit starts).
    """
    was_training = method.training
    method.eval()
    with torch.no_grad():
        v = torch.cat([method.embed_video(method.video_input(x, train=False)) for x in pairs["video"].split(64)])
        a = torch.cat([method.embed_audio(method.audio_input(x, train=False)) for x in pairs["audio"].split(64)])
        hard_rows = torch.arange(1, len(v), 2)
        h = method.embed_audio(method.audio_input(pairs["hard_audio"][hard_rows], train=False))
    n = len(v)
    other = (torch.arange(n) + 2 * WINDOWS_PER_CLIP) % n  # same window slot, next clip
    assert (pairs["source"][other] != pairs["source"]).all()
    d_sync = (v - a).norm(dim=1)
    easy = d_sync < (v - a[other]).norm(dim=1)
    hard = d_sync[hard_rows] < (v[hard_rows] - h).norm(dim=1)
    ev = pairs["eventful"]
    method.train(was_training)
    return {"easy": easy.float().mean().item(), "hard": hard.float().mean().item(),
            "all": torch.cat([easy, hard]).float().mean().item(),
            "easy_eventful": easy[ev].float().mean().item(), "hard_eventful": hard[ev[hard_rows]].float().mean().item(),
            "eventful_share": ev.float().mean().item()}


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
    pairs = held_out_pairs(root, records[TRAIN_CLIPS:], config)
    untrained = sync_accuracy(method, pairs)
    assert method.training

    loader = build_loader(method, table, config, rank=0, world_size=1)
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|log_every_n_steps).*")
        trainer.fit(method, train_dataloaders=loader)
    assert trainer.global_step == STEPS
    assert method.curriculum.hard_share(trainer.global_step - 1) > 0  # hard negatives were trained on

    trained = sync_accuracy(method, pairs)
    report = f"untrained {untrained}, trained {trained}"
    print(report)
    assert untrained["all"] < PASS_EACH, report
    assert trained["all"] >= PASS_ALL, report
    assert trained["easy"] >= PASS_EACH and trained["hard"] >= PASS_EACH, report

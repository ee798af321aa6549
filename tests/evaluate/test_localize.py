"""avssl localize: the per-position projection, the verb's outputs on a demo-world clip (maps at frame
size, window times, overlays, an mp4 with audio), the ground-truth boxes and the pointing game."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avssl import cli
from avssl.config.bundled import resolve_config_path
from avssl.evaluate.localize import window_of, window_starts
from avssl.evaluate.localize_truth import (
    box_share,
    centre_prior,
    pointing_game,
    sounding_boxes,
    world_record,
)
from avssl.evaluate.model_loading import build_random
from avssl.media import probe, write_media
from avssl.methods.configs import load_config
from localize_support import MotionSensor


@pytest.fixture(autouse=True)
def verbs(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "localize", ("localize", "sound-source heatmaps"))


@pytest.fixture(scope="module")
def world(tiny_world):
    return json.loads((tiny_world / "world.json").read_text())


@pytest.fixture(scope="module")
def clip(tiny_world):
    return str(tiny_world / "clips" / "clip_0001.mp4")


def test_a_one_position_map_is_the_pooled_embedding():
    from avssl.evaluate.av_model import embed_video_map

    method = build_random(load_config(resolve_config_path("avts-tiny"))).eval()
    clips = torch.randint(0, 255, (3, 3, 8, 16, 16), dtype=torch.uint8)  # tiny encoder: 16 px -> a 1 x 1 map
    per_position = embed_video_map(method, clips)
    assert per_position.shape == (3, 1, 1, 64)
    with torch.no_grad():
        pooled = method.embed_video(method.video_input(clips, train=False))
    torch.testing.assert_close(per_position[:, 0, 0], pooled, atol=1e-5, rtol=1e-4)
    wide = embed_video_map(method, torch.randint(0, 255, (1, 3, 8, 37, 49), dtype=torch.uint8))
    assert wide.shape[1:3] == (3, 4) and torch.allclose(wide.norm(dim=-1), torch.ones(1, 3, 4))


def test_windows_and_the_window_of_a_time():
    assert window_starts(4.0, 1.0, 1.0).tolist() == [0, 1, 2, 3]
    assert window_starts(4.0, 1.0, 0.5).tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3]
    assert len(window_starts(0.5, 1.0, 1.0)) == 0
    starts = window_starts(4.0, 1.0, 0.5)
    # 1.1 and 1.4 lie in window 1, [0.5, 1.5) (centre 1.0), and window 2, [1.0, 2.0) (centre 1.5):
    # the nearer centre wins; a time past every window gets the last
    assert window_of(np.array([1.1, 1.4, 3.9, 9.0]), starts, 1.0).tolist() == [1, 2, 6, 6]


def test_cli_writes_maps_at_frame_size_overlays_and_a_video_with_audio(clip, tmp_path, capsys):
    out = tmp_path / "where"
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(out), "--stride", "0.5"]) == 0
    assert "7 windows" in capsys.readouterr().out
    source = probe(clip)
    saved = np.load(out / "maps.npz")
    assert saved["maps"].shape == (7, source.height, source.width) and saved["maps"].dtype == np.float32
    assert saved["times"].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3] and float(saved["window_seconds"]) == 1.0
    assert np.abs(saved["maps"]).max() <= 1.0 + 1e-5  # cosine similarities
    assert len(list((out / "overlays").glob("window_*.png"))) == 7
    video = probe(out / "heatmap.mp4")
    assert video.has_audio and (video.width, video.height) == (source.width, source.height)
    assert video.num_frames == source.num_frames
    assert abs(video.duration - source.duration) < 0.1


def test_finer_scale_gives_a_finer_encoder_map(clip, tmp_path, capsys):
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(tmp_path), "--scale", "2",
                     "--map", "contrast"]) == 0
    saved = np.load(tmp_path / "maps.npz")
    assert saved["maps"].shape == (4, 96, 128) and str(saved["mode"]) == "contrast"
    assert tuple(saved["map_size"]) == (5, 7) and tuple(saved["input_size"]) == (73, 97)


def test_bad_input_is_a_usage_error_naming_the_file(tmp_path, clip, capsys):
    silent = str(tmp_path / "silent.mp4")
    write_media(silent, np.zeros((50, 64, 64, 3), np.uint8), fps=25)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(open(clip, "rb").read()[:2000])
    for bad in (silent, str(corrupt)):
        assert cli.main(["localize", bad, "--model", "random:avts-tiny", "--out", str(tmp_path / "o")]) == 2
        assert bad in capsys.readouterr().err
    assert cli.main(["localize", clip, "--model", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "none.ckpt" in capsys.readouterr().err


def test_truth_boxes_match_the_recorded_events(tiny_world, world):
    for record in world["files"]:
        if record["kind"] not in ("clip", "movie", "ucf"):
            continue
        boxes = sounding_boxes(world, record)
        audible = [e for e in record["events"] if e["gain"] > 0]
        assert [b.object for b in boxes] == [e["object"] for e in audible]
        assert np.allclose([b.time for b in boxes], [e["time"] for e in audible], atol=1e-5)
        for b in boxes:
            x0, y0, x1, y1 = b.box
            assert x1 - x0 == pytest.approx(y1 - y0) and 14 <= x1 - x0 <= 24  # radius 7 .. 12 px
            assert -1 <= (x0 + x1) / 2 <= 129 and (y0 + y1) / 2 <= 96 * 0.88  # on or above the floor
    floor = [b for r in world["files"] if r["kind"] == "clip" for b in sounding_boxes(world, r) if b.kind == "floor"]
    floor_y = round(0.88 * 96)  # the object touches the floor line: its box reaches it, its centre is above
    assert floor and all(b.box[3] >= floor_y - 1e-6 and (b.box[1] + b.box[3]) / 2 < floor_y for b in floor)
    record = world_record(str(tiny_world), world, str(tiny_world / "clips" / "clip_0001.mp4"))
    assert record["path"] == "clips/clip_0001.mp4"


def peak_maps(boxes, times, window, shape=(96, 128), move=(0, 0)):
    """Maps whose window holds one peak at the centre of its first event's box (moved by `move`)."""
    maps = np.zeros((len(times), *shape), np.float32)
    index = window_of(np.array([b.time for b in boxes]), times, window)
    for b, k in reversed(list(zip(boxes, index))):
        col = int((b.box[0] + b.box[2]) / 2) + move[0]
        row = int((b.box[1] + b.box[3]) / 2) + move[1]
        maps[k] = 0
        maps[k, np.clip(row, 0, shape[0] - 1), np.clip(col, 0, shape[1] - 1)] = 1
    return maps, index


def test_pointing_game_scores_peaks_on_and_off_the_sounding_object(world):
    record = next(r for r in world["files"] if r["kind"] == "clip" and len(sounding_boxes(world, r)) >= 3)
    boxes = sounding_boxes(world, record)
    times = window_starts(record["duration"], 1.0, 1.0)
    maps, index = peak_maps(boxes, times, 1.0)
    hits = pointing_game(maps, times, 1.0, boxes)
    assert len(hits) == len(boxes)
    first_of_window = [i == 0 or index[i] != index[i - 1] for i in range(len(boxes))]
    assert all(h for h, first in zip(hits, first_of_window) if first)
    off, _ = peak_maps(boxes, times, 1.0, move=(40, 0))
    assert not any(pointing_game(off, times, 1.0, boxes)[i] for i, first in enumerate(first_of_window) if first)
    prior = centre_prior((96, 128))
    assert np.unravel_index(np.argmax(prior), prior.shape) in [(47, 63), (47, 64), (48, 63), (48, 64)]
    assert 0 < box_share(boxes, (96, 128)) < 0.1


def test_contrast_maps_keep_only_what_answers_this_window_sound():
    from avssl.evaluate.localize import audio_maps

    torch.manual_seed(0)
    audio = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    video = torch.nn.functional.normalize(torch.randn(4, 3, 5, 8), dim=-1)
    video[:, 1, 2] = audio.mean(dim=0)  # a position as close to every window's sound: background
    for k in range(4):
        video[k, 0, 4] = audio[k]  # a position that is the window's own sound
    raw, contrast = audio_maps(video, audio, "raw"), audio_maps(video, audio, "contrast")
    torch.testing.assert_close(raw[:, 0, 4], torch.ones(4))
    others = (audio.sum(0) - audio) / 3
    torch.testing.assert_close(contrast, raw - torch.einsum("khwe,ke->khw", video, others))
    assert torch.all(contrast[:, 0, 4] > contrast[:, 1, 2])
    torch.testing.assert_close(audio_maps(video[:1], audio[:1], "contrast"), raw[:1])  # one window: raw


def test_box_peak_rank_is_one_on_the_box_and_low_when_the_map_avoids_it(world):
    from avssl.evaluate.localize_truth import box_mask, box_peak_ranks

    record = next(r for r in world["files"] if r["kind"] == "clip" and sounding_boxes(world, r))
    boxes = sounding_boxes(world, record)[:1]
    times = window_starts(record["duration"], 1.0, 1.0)
    on, _ = peak_maps(boxes, times, 1.0)
    assert box_peak_ranks(on, times, 1.0, boxes) == [pytest.approx(1 - 1 / (96 * 128))]
    mask = box_mask(boxes[0].box, (96, 128))
    noise = 0.01 * np.random.default_rng(0).random((len(times), 96, 128))
    avoid = np.repeat(np.where(mask, -1.0, 0.0)[None], len(times), 0) + noise
    assert box_peak_ranks(avoid, times, 1.0, boxes)[0] < 0.05


def test_occlusion_patches_cover_the_frame_and_still_only_their_square():
    from avssl.evaluate.localize_occlusion import drop_map, patch_corners, stilled_variants

    corners = patch_corners(13, 20, 6)
    covered = np.zeros((13, 20), bool)
    for y, x in corners:
        covered[y:y + 6, x:x + 6] = True
    assert covered.all() and {y for y, _ in corners} == {0, 3, 6, 7} and max(x for _, x in corners) == 14
    clip = torch.randint(0, 255, (3, 4, 13, 20), dtype=torch.uint8)
    variants = stilled_variants(clip, corners[:2], 6)
    assert torch.equal(variants[0][..., 6:, :], clip[..., 6:, :]) and torch.equal(variants[0][..., :, 6:], clip[..., :, 6:])
    square = variants[0][..., :6, :6]
    assert torch.equal(square, square[:, :1].expand_as(square))  # one still picture in every frame
    assert (square[:, 0].float() - clip[..., :6, :6].float().mean(dim=1)).abs().max() <= 0.5
    # the mean over the patches covering each pixel: one patch with drop 1, the others 0
    drops = torch.zeros(len(corners))
    drops[0] = 1.0
    mapped = drop_map(drops, (13, 20), 6)
    assert mapped[0, 0] == 1.0 and mapped[12, 19] == 0.0 and 0 < mapped[4, 4] < 1


def test_occlusion_map_peaks_where_the_motion_that_matches_the_audio_is():
    from avssl.evaluate.localize_occlusion import drop_map, patch_corners, stilling_effects

    clip = torch.zeros(3, 8, 24, 32, dtype=torch.uint8)
    clip[:, ::2, 14:18, 20:24] = 200  # a flashing square that the model's agreement depends on
    clip[:, 1::2, 2:6, 2:6] = 200  # another one that it ignores
    method = MotionSensor((12, 20, 18, 26))
    effects = stilling_effects(method, clip, patch=4)
    assert effects.shape == (len(patch_corners(24, 32, 4)), 2)
    audio = torch.tensor([1.0, 0.0])  # the sound agrees with motion in the sensor's region
    mapped = drop_map(effects @ audio, (24, 32), 4)
    peak = np.unravel_index(int(mapped.argmax()), mapped.shape)
    assert 14 <= peak[0] < 18 and 20 <= peak[1] < 24
    assert mapped[2:6, 2:6].abs().max() < 1e-6 < mapped.max()


def test_cli_occlusion_maps_and_patch_only_with_them(clip, tmp_path, capsys):
    out = tmp_path / "still"
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(out), "--map", "occlusion-contrast",
                     "--patch", "12"]) == 0
    assert "stilled squares over 37x49 frames" in capsys.readouterr().out
    saved = np.load(out / "maps.npz")
    assert saved["maps"].shape == (4, 96, 128) and str(saved["mode"]) == "occlusion-contrast"
    assert np.isfinite(saved["maps"]).all() and saved["maps"].std() > 0
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(tmp_path / "o"), "--patch", "12"]) == 2
    assert "--patch applies to --map occlusion" in capsys.readouterr().err
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(tmp_path / "o"), "--map", "gradcam"]) == 2
    assert "--map must be one of raw, contrast, occlusion, occlusion-contrast, gradient, got 'gradcam'" in capsys.readouterr().err


def test_bench_sync_localize_refuses_an_unknown_map_kind_before_any_work(tmp_path):
    import argparse

    from avssl.bench import sync_localize
    from avssl.errors import UsageError

    parser = argparse.ArgumentParser()
    sync_localize.add_arguments(parser)
    with pytest.raises(UsageError, match="--maps: .*gradient, got 'raw,heat'"):
        sync_localize.run(parser.parse_args(["--maps", "raw,heat", "--work", str(tmp_path / "w")]))
    assert not (tmp_path / "w").exists()


def test_motion_maps_peak_on_the_moving_objects_and_are_zero_on_the_still_backdrop(tiny_world, world):
    """The yardstick `bench sync-localize` sets beside the sound maps: no model, no audio. On the tiny
    world's clips the box of the sounding object holds (nearly) the map's maximum, since what sounds
    there always moves, while most of the frame (the backdrop) does not change at all."""
    from avssl.bench.sync_localize import baselines, score_maps
    from avssl.evaluate.av_model import load_av_model
    from avssl.evaluate.localize import motion_maps

    loaded = load_av_model("random:avts-tiny")
    records = [r for r in world["files"] if r["kind"] == "clip"]
    maps = motion_maps(loaded, str(tiny_world / records[0]["path"]))
    assert maps.maps.shape == (4, 96, 128) and maps.mode == "motion" and maps.map_size == (37, 49)
    assert maps.maps.min() == 0 and (maps.maps == 0).mean() > 0.5 and maps.maps.max() > 10
    scored = score_maps(lambda path: motion_maps(loaded, path), str(tiny_world), world, records)
    assert scored["events"] > 20 and scored["box_peak_rank"] > 0.95
    assert scored["pointing_game"] > 2 * baselines(world, records, scored["frame_size"])["random_point"]

"""The synthetic demo world: determinism, physics, sound on the impact sample, decoded files agree with
world.json, and the labelled sets in the UCF101 / ESC-50 official formats."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re

import av
import numpy as np
import pytest

from avssl.data.synthetic import preset
from avssl.data.synthetic.physics import Arena, simulate
from avssl.data.synthetic.recordings import (
    clip_timeline,
    movie_timeline,
    ucf_group_timeline,
)
from avssl.data.synthetic.render import floor_line
from avssl.data.synthetic.timeline import render
from avssl.data.synthetic.world import generate_world
from avssl.errors import UsageError


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    world = generate_world(out, preset("tiny", seed=3), scale="tiny", workers=2, progress=False)
    return out, world


def _decode(path):
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return frames, audio


def _rms(a):
    return float(np.sqrt(np.mean(np.asarray(a, np.float64) ** 2) + 1e-12))


def test_same_seed_same_arrays_other_seed_other_arrays():
    cfg = preset("tiny", seed=7)
    f1, a1, e1 = render(clip_timeline(cfg, 1), cfg)
    render(clip_timeline(cfg, 0), cfg)  # order of generation must not matter
    f2, a2, e2 = render(clip_timeline(cfg, 1), cfg)
    assert f1.shape == (100, cfg.height, cfg.width, 3) and a1.shape == (64000,)
    assert np.array_equal(f1, f2) and np.array_equal(a1, a2) and e1 == e2
    other = preset("tiny", seed=8)
    f3, a3, _ = render(clip_timeline(other, 1), other)
    assert not np.array_equal(f1, f3) and not np.array_equal(a1, a3)
    (m1, cast1), (m2, cast2) = movie_timeline(cfg, 1), movie_timeline(cfg, 1)
    assert cast1 == cast2 and [o.to_dict() for o in m1.objects] == [o.to_dict() for o in m2.objects]


def test_drop_bounces_at_the_hand_computed_times():
    arena = Arena(width=128, floor_y=84, gravity=400, restitution=0.5, wall_restitution=1.0, rest_speed=25)
    traj, impacts = simulate(arena, 5, 5, t_start=1.0, t_end=10.0, x=64, y=29, vx=0, vy=0)
    # falls 84 - 5 - 29 = 50 px from rest: t = sqrt(2 * 50 / 400) = 0.5 s at 200 px/s
    assert impacts[0].kind == "floor"
    assert impacts[0].time == pytest.approx(1.5, abs=1e-9)
    assert impacts[0].speed == pytest.approx(200.0, abs=1e-6)
    # leaves at 100 px/s, back after 2 * 100 / 400 = 0.5 s; then 50 px/s, 0.25 s; 25 px/s, 0.125 s;
    # then 12.5 px/s < rest_speed: it rests, and no impact follows until t_end
    assert [round(i.time, 9) for i in impacts] == [1.5, 2.0, 2.25, 2.375]
    assert [round(i.speed, 6) for i in impacts] == [200.0, 100.0, 50.0, 25.0]
    x, y = traj.position(np.array([1.5, 1.75, 5.0]))
    assert y[0] == pytest.approx(79.0) and y[2] == pytest.approx(79.0)
    assert y[1] == pytest.approx(79.0 - (100 * 0.25 - 0.5 * 400 * 0.25**2))  # apex of the 2nd hop
    # sideways at 60 px/s from x=64: right wall (124) after 1 s, back across 120 px to the left wall in 2 s
    _, side = simulate(arena, 4, 4, 0.0, 3.5, x=64, y=80, vx=60, vy=0)
    assert [(i.kind, round(i.time, 9)) for i in side] == [("wall", 1.0), ("wall", 3.0)]


def test_every_impact_sound_starts_on_its_sample():
    cfg = dataclasses.replace(preset("tiny", seed=5), theme_level=0.0, noise_level=0.0)
    frames, audio, events = render(clip_timeline(cfg, 2), cfg)
    assert len(events) >= 3
    first = int(round(events[0]["time"] * cfg.sample_rate))
    # silence until the first event; its sound's attack starts from 0 on that very sample
    assert np.all(audio[: first + 1] == 0.0) and audio[first + 1] != 0.0
    for e in events:
        s = int(round(e["time"] * cfg.sample_rate))
        assert _rms(audio[s:s + 80]) > 0, e


def test_tiny_world_lists_real_files(tiny_world):
    out, world = tiny_world
    cfg = preset("tiny", seed=3)
    kinds = [r["kind"] for r in world["files"]]
    assert kinds.count("clip") == cfg.n_clips and kinds.count("movie") == cfg.n_movies
    assert kinds.count("ucf") == 2 * cfg.n_object_classes * cfg.ucf_groups * cfg.ucf_clips_per_group
    assert kinds.count("esc") == cfg.n_object_classes * 5 * cfg.esc_sources_per_class_per_fold
    movie = next(r for r in world["files"] if r["kind"] == "movie")
    with av.open(str(out / movie["path"])) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, a.codec_context.name) == ("h264", "aac")
        assert (v.average_rate, v.width, v.height, a.sample_rate) == (25, 128, 96, 16000)
    frames, audio = _decode(out / movie["path"])
    assert len(frames) == movie["num_frames"] == 25 * 12
    assert len(audio) >= movie["num_samples"]
    cast_classes = {c["class"] for c in movie["cast"]}
    assert {o["class"] for o in movie["objects"] if o["character"] is not None} <= cast_classes
    assert movie["scenes"][0]["start"] == 0 and movie["scenes"][-1]["end"] == 12.0


def test_decoded_sounds_and_floor_contacts_match_world_json(tiny_world):
    """In the encoded files, each well-separated impact of world.json starts a sound within 5 ms,
    and in the video the object touches the floor on the frame nearest a floor impact."""
    out, world = tiny_world
    floor = floor_line(96)
    onset_errors, jumps, contacts = [], [], 0
    for rec in world["files"]:
        if rec["kind"] != "ucf" or rec["motion"] != "Bounce":
            continue
        frames, audio = _decode(out / rec["path"])
        background = np.median(frames.astype(np.int16), axis=0)
        prev = -1.0
        for e in rec["events"]:
            t, s = e["time"], int(round(e["time"] * 16000))
            separated = t - prev >= 0.3 and e["gain"] >= 0.2 and 800 <= s < len(audio) - 800
            prev = t
            if separated:
                jumps.append(_rms(audio[s:s + 160]) / _rms(audio[s - 160:s]))
                starts = np.arange(s - 320, s + 321, 8)
                score = [_rms(audio[k:k + 80]) / _rms(audio[k - 80:k]) for k in starts]
                onset_errors.append((starts[int(np.argmax(score))] - s) / 16.0)
            i = int(round(t * 25))
            alone = all(o["class"] == rec["object_class"] for o in rec["objects"])  # no distractor in view
            if alone and e["kind"] == "floor" and e["speed"] > 60 and 3 <= i < len(frames):
                moved = np.abs(frames[i].astype(np.int16) - background).max(-1) > 25
                rows = np.nonzero(moved.any(1))[0]
                gap = floor - 1 - rows.max()
                assert gap <= e["speed"] * abs(i / 25 - t) + 1.5, (rec["path"], e, gap)
                contacts += 1
    assert len(onset_errors) >= 10 and contacts >= 10
    assert max(abs(err) for err in onset_errors) <= 5.0, onset_errors
    assert np.median(jumps) > 3.0


def test_reversed_playback_is_detectable_from_physics():
    """Bounce heights shrink forward in time (restitution < 1): the arrow of time is in the pixels."""
    cfg = preset("tiny", seed=1)
    tl = ucf_group_timeline(cfg, 0, 1, 0, "Bounce")
    _, _, events = render(tl, cfg)
    first = tl.objects[0]
    speeds = [e["speed"] for e in events if e["object"] == first.id and e["kind"] == "floor"]
    assert len(speeds) >= 2
    assert all(b == pytest.approx(a * cfg.restitution, rel=1e-4) for a, b in zip(speeds, speeds[1:]))


def test_ucf_lists_follow_the_official_format_and_keep_groups_apart(tiny_world):
    out, world = tiny_world
    lists = out / "ucf" / "ucfTrainTestlist"
    classes = [line.split(" ") for line in (lists / "classInd.txt").read_text().splitlines()]
    assert [int(i) for i, _ in classes] == list(range(1, len(classes) + 1))
    names = {int(i): n for i, n in classes}
    assert names[1] == "RedCircleBounce" and names[2] == "RedCircleThrow"
    clip = re.compile(r"^([A-Za-z]+)/v_\1_g(\d\d)_c(\d\d)\.mp4$")
    listed = set()
    for split in ("01", "02", "03"):
        train = (lists / f"trainlist{split}.txt").read_text().splitlines()
        test = (lists / f"testlist{split}.txt").read_text().splitlines()
        train_groups, test_groups = set(), set()
        for line in train:
            path, label = line.split(" ")
            m = clip.match(path)
            assert m and names[int(label)] == m.group(1), line
            train_groups.add((m.group(1), m.group(2)))
            listed.add(path)
        for line in test:
            m = clip.match(line)
            assert m and " " not in line, line
            test_groups.add((m.group(1), m.group(2)))
            listed.add(line)
        assert train_groups and test_groups and not train_groups & test_groups
        assert {g for _, g in test_groups} == {split[1:].zfill(2)}  # tiny: 3 groups, split N tests group N
    on_disk = {f"{c}/{f}" for c in os.listdir(out / "ucf" / "UCF-101") for f in os.listdir(out / "ucf" / "UCF-101" / c)}
    assert listed == on_disk


def test_ucf_lists_read_by_the_ucf101_adapter(tiny_world):
    from avssl.data.adapters import ucf101

    out, world = tiny_world
    entries = ucf101.entries(str(out / "ucf"), 1)
    labels = {r["path"]: r["label"] for r in world["files"] if r["kind"] == "ucf"}
    assert len(entries) == len(labels)
    for e in entries:
        rel = os.path.relpath(e.path, out).replace(os.sep, "/")
        assert labels[rel] == e.label and os.path.isfile(e.path)


def test_esc_set_follows_the_official_format(tiny_world):
    out, world = tiny_world
    with open(out / "esc" / "meta" / "esc50.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    name = re.compile(r"^([1-5])-(\d{6})-([A-Z])-(\d+)\.wav$")
    fold_of_source = {}
    for filename, fold, target, category, esc10, src, take in rows[1:]:
        m = name.match(filename)
        assert m and m.groups() == (fold, src, take, target), filename
        assert esc10 in ("True", "False") and category.isidentifier()
        assert fold_of_source.setdefault(src, fold) == fold  # a source never straddles folds
        with av.open(str(out / "esc" / "audio" / filename)) as c:
            s = c.streams.audio[0]
            assert s.sample_rate == 16000
            n = sum(fr.samples for fr in c.decode(audio=0))
        assert n == 2 * 16000
    assert sorted({r[1] for r in rows[1:]}) == ["1", "2", "3", "4", "5"]
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
    assert len(rows) - 1 == sum(r["kind"] == "esc" for r in world["files"])


def test_bad_config_names_the_key():
    with pytest.raises(UsageError, match="ucf_groups"):
        preset("tiny", ucf_groups=0)
    with pytest.raises(UsageError, match="unknown key"):
        preset("tiny", not_a_key=1)
    with pytest.raises(UsageError, match="huge"):
        preset("huge")
    assert math.isclose(preset("default").clip_seconds, 10.0)


def test_movies_have_their_own_palette_and_groups_their_own_setting(tiny_world):
    import colorsys

    _, world = tiny_world
    movies = [r for r in world["files"] if r["kind"] == "movie"]
    hues = [[colorsys.rgb_to_hsv(*(c / 255 for c in b["sky_top"]))[0] for b in m["backdrops"]] for m in movies]

    def dist(a, b):  # around the colour wheel
        return min(abs(a - b), 1 - abs(a - b))

    assert all(dist(a, b) <= 0.1 for h in hues for a in h for b in h)  # a movie's locations share its hue ...
    assert min(dist(a, b) for a in hues[0] for b in hues[1]) > 0.15  # ... and movies differ
    assert movies[0]["theme"] != movies[1]["theme"]
    ucf = [r for r in world["files"] if r["kind"] == "ucf"]
    by_group = {}
    for r in ucf:
        by_group.setdefault((r["label"], r["group"]), []).append(r)
    for clips in by_group.values():
        assert len({json.dumps(c["backdrops"]) + json.dumps(c["theme"]) for c in clips}) == 1
    assert len({json.dumps(c[0]["backdrops"]) for c in by_group.values()}) == len(by_group)

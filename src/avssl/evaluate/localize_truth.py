"""Where each sound of a demo-world file comes from, and the pointing game that scores sound maps on it.

The demo world (avssl.data.synthetic) writes world.json with every file's objects and sound events
but not the objects' trajectories; they are re-simulated here from the world's config with the
generator's own public functions (the file's Timeline from recordings.*_timeline, the motion from
physics.simulate in timeline.arena, exactly as timeline.render runs them), and checked against the
recorded events. The box of an event is the sounding object's full-size extent (radius r around its
centre, every shape fits in it) at the event's time, in frame pixels (x right, y down, a pixel
(row, col) covering [col, col + 1) x [row, row + 1)).

Pointing game: an event is a hit when the maximum of the map of the window that contains it
(avssl.evaluate.localize.window_of) lies inside its box. Events of zero gain (an object that has
faded out) make no sound and are left out.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from avssl.data.synthetic.catalogue import OBJECT_CLASSES, action_classes
from avssl.data.synthetic.config import WorldConfig
from avssl.data.synthetic.physics import simulate
from avssl.data.synthetic.recordings import clip_timeline, movie_timeline, ucf_group_timeline
from avssl.data.synthetic.render import EXTENTS
from avssl.data.synthetic.timeline import Timeline, arena
from avssl.errors import UsageError
from avssl.evaluate.localize import window_of

TIME_TOLERANCE = 1e-4  # seconds: world.json rounds event times to 1e-6


@dataclass(frozen=True)
class SoundingBox:
    """One sound event: `time` (s, in the file), `object` id, `kind`, and the box (x0, y0, x1, y1) in px."""

    time: float
    object: int
    kind: str
    box: tuple[float, float, float, float]


def world_config(world: dict) -> WorldConfig:
    return WorldConfig(**world["config"])


def record_timeline(world: dict, record: dict) -> tuple[Timeline, float]:
    """(the Timeline the record's file was cut from, the file's start time in it)."""
    cfg = world_config(world)
    kind = record.get("kind")
    if kind == "clip":
        index = int(re.search(r"clip_(\d+)", record["path"]).group(1))
        return clip_timeline(cfg, index), 0.0
    if kind == "movie":
        return movie_timeline(cfg, int(record["movie"]))[0], 0.0
    if kind == "ucf":
        action = int(record["label_index"]) - 1
        _, class_id, motion = action_classes(cfg.n_object_classes)[action]
        return ucf_group_timeline(cfg, action, int(record["group"]), class_id, motion), float(record["offset_in_group"])
    raise UsageError(f"{record.get('path')}: no pictures to localize in a {kind!r} file of the demo world")


def timeline_boxes(tl: Timeline, cfg: WorldConfig) -> list[SoundingBox]:
    """Every sound event of a timeline with its object's box, in time order (the events of render)."""
    world_arena = arena(cfg)
    out = []
    for obj in tl.objects:
        side, bottom = EXTENTS[OBJECT_CLASSES[obj.class_id].shape]
        end = min(obj.t_vanish, tl.scene_end(obj.t_appear))
        traj, impacts = simulate(world_arena, side * obj.radius, bottom * obj.radius, obj.t_appear, end,
                                 obj.x, obj.y, obj.vx, obj.vy)
        events = ([(obj.t_appear, "appear")] if obj.t_appear >= 0 else []) + [(i.time, i.kind) for i in impacts]
        if not events:
            continue
        xs, ys = traj.position(np.array([t for t, _ in events]))
        r = obj.radius
        out += [SoundingBox(float(t), obj.id, kind, (float(x - r), float(y - r), float(x + r), float(y + r)))
                for (t, kind), x, y in zip(events, xs, ys)]
    out.sort(key=lambda b: (b.time, b.object))
    return out


def sounding_boxes(world: dict, record: dict) -> list[SoundingBox]:
    """The audible events of one world.json file record with their boxes, times in the file.

    UsageError when the re-simulated events differ from the recorded ones (a world written by
    another generator version).
    """
    tl, start = record_timeline(world, record)
    duration = float(record["duration"])
    boxes = [SoundingBox(b.time - start, b.object, b.kind, b.box) for b in timeline_boxes(tl, world_config(world))
             if start <= b.time < start + duration]
    recorded = record["events"]
    if len(recorded) != len(boxes) or any(
            abs(e["time"] - b.time) > TIME_TOLERANCE or e["kind"] != b.kind for e, b in zip(recorded, boxes)):
        raise UsageError(f"{record['path']}: the re-simulated sound events differ from world.json "
                         f"({len(boxes)} vs {len(recorded)}): was the world written by another avssl?")
    return [b for b, e in zip(boxes, recorded) if e["gain"] > 0]


def inside(box: tuple[float, float, float, float], row: int, col: int) -> bool:
    x0, y0, x1, y1 = box
    x, y = col + 0.5, row + 0.5
    return x0 <= x <= x1 and y0 <= y <= y1


def event_windows(times: np.ndarray, window_seconds: float,
                  boxes: list[SoundingBox]) -> tuple[list[SoundingBox], np.ndarray]:
    """The events inside the windows' span and, for each, the index of its window (window_of)."""
    span_end = times[-1] + window_seconds
    kept = [b for b in boxes if times[0] <= b.time < span_end]
    index = window_of(np.array([b.time for b in kept]), times, window_seconds) if kept else np.zeros(0, int)
    return kept, index


def pointing_game(maps: np.ndarray, times: np.ndarray, window_seconds: float,
                  boxes: list[SoundingBox]) -> list[bool]:
    """Per event (in the windows' span), whether the maximum of its window's map [H, W] lies in its box."""
    kept, index = event_windows(times, window_seconds, boxes)
    hits = []
    for b, k in zip(kept, index):
        row, col = np.unravel_index(int(np.argmax(maps[k])), maps[k].shape)
        hits.append(inside(b.box, int(row), int(col)))
    return hits


def box_mask(box: tuple[float, float, float, float], shape: tuple[int, int]) -> np.ndarray:
    """bool [H, W]: the pixels whose centre lies in the box."""
    rows, cols = np.arange(shape[0])[:, None] + 0.5, np.arange(shape[1])[None, :] + 0.5
    return (cols >= box[0]) & (cols <= box[2]) & (rows >= box[1]) & (rows <= box[3])


def box_peak_ranks(maps: np.ndarray, times: np.ndarray, window_seconds: float,
                   boxes: list[SoundingBox]) -> list[float]:
    """Per event, the share of its window's map below the map's highest value inside the event's box:
    1 when the box holds the map's maximum, about 0.5 for a map unrelated to the box, lower when the
    map avoids the sounding object. A softer score than the pointing game on coarse maps."""
    kept, index = event_windows(times, window_seconds, boxes)
    ranks = []
    for b, k in zip(kept, index):
        mask = box_mask(b.box, maps[k].shape)
        if mask.any():
            ranks.append(float((maps[k] < maps[k][mask].max()).mean()))
    return ranks


def centre_prior(shape: tuple[int, int]) -> np.ndarray:
    """float32 [H, W]: a map whose maximum is the frame's centre (the "sounds come from the middle" prior)."""
    h, w = shape
    rows = (np.arange(h) + 0.5 - h / 2)[:, None]
    cols = (np.arange(w) + 0.5 - w / 2)[None, :]
    return (-(rows ** 2) - cols ** 2).astype(np.float32)


def box_share(boxes: list[SoundingBox], shape: tuple[int, int]) -> float:
    """Mean share of the frame's pixels inside an event's box: the hit rate of a uniformly random point."""
    if not boxes:
        return float("nan")
    return float(np.mean([box_mask(b.box, shape).mean() for b in boxes]))


def world_record(world_root: str, world: dict, path: str) -> dict:
    """The world.json record of `path` (a file under world_root)."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(world_root))
    for record in world["files"]:
        if record["path"] == rel:
            return record
    raise UsageError(f"{path}: not a file of the demo world in {world_root}")

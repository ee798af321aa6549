"""Generate the demo world into a folder: media files in parallel, labelled-set lists, world.json.

Layout of OUT (see docs/demo_world.md):
    world.json                                  ground truth of every file (objects, events, labels)
    clips/clip_NNNN.mp4                         unlabeled pretraining clips
    movies/movie_NN.mp4                         long-form movies
    ucf/UCF-101/<Class>/v_<Class>_gGG_cCC.mp4    UCF101-style action set
    ucf/ucfTrainTestlist/{classInd,trainlist0N,testlist0N}.txt
    esc/audio/<fold>-<src>-<take>-<target>.wav  ESC-50-style sound set
    esc/meta/esc50.csv
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from avssl.data.synthetic.catalogue import OBJECT_CLASSES, action_classes
from avssl.data.synthetic.config import FORMAT_VERSION, WorldConfig
from avssl.data.synthetic.labelled_sets import (
    esc_source_id,
    ucf_clip_name,
    ucf_splits,
    write_esc_meta,
    write_ucf_lists,
)
from avssl.data.synthetic.recordings import (
    clip_timeline,
    esc_recording,
    movie_timeline,
    ucf_group_timeline,
)
from avssl.data.synthetic.timeline import Timeline, render
from avssl.errors import UsageError
from avssl.media.writer import write_media

log = logging.getLogger(__name__)

WORLD_FILE = "world.json"
MARKER_FILE = ".avssl-world"  # written first: a folder with it may be cleared and regenerated
OWNED_DIRS = ("clips", "movies", "ucf", "esc")


def plan_jobs(cfg: WorldConfig) -> list[tuple]:
    """Every unit of work, biggest first so that the pool ends evenly: (kind, *indices)."""
    jobs: list[tuple] = [("movie", m) for m in range(cfg.n_movies)]
    jobs += [("ucf", a, g) for a in range(len(action_classes(cfg.n_object_classes)))
             for g in range(1, cfg.ucf_groups + 1)]
    jobs += [("clip", i) for i in range(cfg.n_clips)]
    jobs += [("esc", k, fold, s) for k in range(cfg.n_object_classes) for fold in range(1, 6)
             for s in range(cfg.esc_sources_per_class_per_fold)]
    return jobs


def make_job(cfg: WorldConfig, out: str, job: tuple) -> list[dict]:
    """Render and encode one job's files under `out`; return their world.json records."""
    kind = job[0]
    if kind == "clip":
        return [_write_timeline(cfg, out, f"clips/clip_{job[1]:04d}.mp4", clip_timeline(cfg, job[1]), {"kind": "clip"})]
    if kind == "movie":
        tl, cast = movie_timeline(cfg, job[1])
        ends = tl.scene_starts[1:] + [tl.duration]
        extra = {"kind": "movie", "movie": job[1], "cast": cast,
                 "scenes": [{"start": round(s, 6), "end": round(e, 6), "location": loc}
                            for s, e, loc in zip(tl.scene_starts, ends, tl.scene_backdrop)]}
        return [_write_timeline(cfg, out, f"movies/movie_{job[1]:02d}.mp4", tl, extra)]
    if kind == "ucf":
        return _write_ucf_group(cfg, out, job[1], job[2])
    if kind == "esc":
        return _write_esc_source(cfg, out, job[1], job[2], job[3])
    raise ValueError(f"unknown job kind {kind!r}")


def _objects_in_window(tl: Timeline, start: float, duration: float) -> dict:
    """Objects and events of the window [start, start+duration) of a timeline, times relative to start."""
    objects = []
    for o in tl.objects:
        if o.t_appear < start + duration and o.t_vanish > start:
            d = o.to_dict()
            d["t_appear"], d["t_vanish"] = round(o.t_appear - start, 6), round(o.t_vanish - start, 6)
            objects.append(d)
    return {"objects": objects}


def _write_timeline(cfg: WorldConfig, out: str, rel: str, tl: Timeline, extra: dict) -> dict:
    frames, audio, events = render(tl, cfg)
    _encode(cfg, os.path.join(out, rel), frames, audio)
    return {"path": rel, **extra, "duration": tl.duration, "num_frames": len(frames), "num_samples": len(audio),
            "backdrops": [b.to_dict() for b in tl.backdrops], "theme": _theme_dict(tl),
            **_objects_in_window(tl, 0.0, tl.duration), "events": events}


def _write_ucf_group(cfg: WorldConfig, out: str, action: int, group: int) -> list[dict]:
    name, class_id, motion = action_classes(cfg.n_object_classes)[action]
    tl = ucf_group_timeline(cfg, action, group, class_id, motion)
    frames, audio, events = render(tl, cfg)
    nf = int(round(cfg.ucf_clip_seconds * cfg.fps))
    ns = int(round(cfg.ucf_clip_seconds * cfg.sample_rate))
    records = []
    for c in range(cfg.ucf_clips_per_group):
        start = c * cfg.ucf_clip_seconds
        rel = f"ucf/UCF-101/{name}/{ucf_clip_name(name, group, c + 1)}"
        _encode(cfg, os.path.join(out, rel), frames[c * nf:(c + 1) * nf], audio[c * ns:(c + 1) * ns])
        clip_events = [{**e, "time": round(e["time"] - start, 6)} for e in events
                       if start <= e["time"] < start + cfg.ucf_clip_seconds]
        records.append({"path": rel, "kind": "ucf", "label": name, "label_index": action + 1,
                        "object_class": class_id, "motion": motion, "group": group, "clip": c + 1,
                        "duration": cfg.ucf_clip_seconds, "num_frames": nf, "num_samples": ns,
                        "offset_in_group": start, "backdrops": [tl.backdrops[0].to_dict()],
                        "theme": _theme_dict(tl), **_objects_in_window(tl, start, cfg.ucf_clip_seconds),
                        "events": clip_events})
    return records


def _write_esc_source(cfg: WorldConfig, out: str, class_id: int, fold: int, source: int) -> list[dict]:
    audio, per_take = esc_recording(cfg, class_id, fold * 100 + source)
    src_file = esc_source_id(cfg, class_id, fold, source)
    ns = int(round(cfg.esc_clip_seconds * cfg.sample_rate))
    records = []
    for k, times in enumerate(per_take):
        take = chr(ord("A") + k)
        rel = f"esc/audio/{fold}-{src_file}-{take}-{class_id}.wav"
        os.makedirs(os.path.join(out, "esc", "audio"), exist_ok=True)
        write_media(os.path.join(out, rel), audio=audio[k * ns:(k + 1) * ns], sample_rate=cfg.sample_rate)
        records.append({"path": rel, "kind": "esc", "label": OBJECT_CLASSES[class_id].sound, "target": class_id,
                        "fold": fold, "src_file": src_file, "take": take, "duration": cfg.esc_clip_seconds,
                        "num_samples": ns, "events": [{"time": t, "kind": "impact", "class": class_id} for t in times]})
    return records


def _theme_dict(tl: Timeline) -> dict:
    return {"base_hz": round(tl.theme.base, 3), "note_seconds": round(tl.theme.note_seconds, 4),
            "motif": [round(m, 4) for m in tl.theme.motif]}


def _encode(cfg: WorldConfig, path: str, frames, audio) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_media(path, frames, cfg.fps, audio, cfg.sample_rate, fmt="mp4", crf=cfg.crf, gop=cfg.gop)


def load_world(out: str | os.PathLike) -> dict | None:
    """The world.json of `out`, or None when there is none."""
    path = Path(out) / WORLD_FILE
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def is_complete(out: str | os.PathLike, cfg: WorldConfig) -> bool:
    """True when `out` holds a finished world of exactly this config (same hash) with all its files."""
    world = load_world(out)
    if not world or not world.get("complete") or world.get("config_hash") != cfg.config_hash():
        return False
    return all((Path(out) / rec["path"]).is_file() for rec in world["files"])


def generate_world(
    out: str | os.PathLike, cfg: WorldConfig, scale: str = "custom", workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write the world of `cfg` into `out` (cached: returns the existing world when it is complete).

    Raises UsageError when `out` is a non-empty folder that does not hold a demo world.
    """
    cfg.validate()
    out = os.fspath(out)
    if is_complete(out, cfg):
        log.info("%s already holds a complete demo world (config %s): nothing to do", out, cfg.config_hash())
        return load_world(out)
    _prepare_folder(out)
    workers = workers or len(os.sched_getaffinity(0))
    jobs = plan_jobs(cfg)
    log.info("writing the demo world (%s, seed %d) into %s: %d jobs on %d workers", scale, cfg.seed, out,
             len(jobs), workers)
    started = time.perf_counter()
    records: list[dict] = []
    bar = tqdm(total=len(jobs), desc="make-demo-data", unit="job", disable=not progress)
    if workers <= 1:
        for job in jobs:
            records += make_job(cfg, out, job)
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")  # safe beside a parent that already runs threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(make_job, cfg, out, job): job for job in jobs}
            for fut in as_completed(futures):
                if fut.exception() is not None:
                    pool.shutdown(cancel_futures=True)
                    raise RuntimeError(f"demo world: job {futures[fut]} failed in {out}") from fut.exception()
                records += fut.result()
                bar.update()
    bar.close()
    records.sort(key=lambda r: r["path"])
    write_ucf_lists(out, cfg, [r for r in records if r["kind"] == "ucf"])
    write_esc_meta(out, cfg, [r for r in records if r["kind"] == "esc"])
    world = {
        "format_version": FORMAT_VERSION, "config_hash": cfg.config_hash(), "scale": scale, "seed": cfg.seed,
        "config": cfg.to_dict(),
        "object_classes": [{"id": k, "name": c.name, "shape": c.shape, "colour": list(c.colour), "sound": c.sound}
                           for k, c in enumerate(OBJECT_CLASSES[:cfg.n_object_classes])],
        "action_classes": [{"index": i + 1, "name": n, "object_class": k, "motion": m}
                           for i, (n, k, m) in enumerate(action_classes(cfg.n_object_classes))],
        "ucf_splits": ucf_splits(cfg.ucf_groups),
        "files": records, "complete": True,
    }
    tmp = os.path.join(out, WORLD_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(world, f, separators=(",", ":"))
    os.replace(tmp, os.path.join(out, WORLD_FILE))  # last: its presence means the world is complete
    log.info("demo world written in %.1f s: %d files", time.perf_counter() - started, len(records))
    return world


def _prepare_folder(out: str) -> None:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / MARKER_FILE).exists():
        raise UsageError(f"{out}: folder is not empty and holds no demo world; choose an empty or new folder")
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER_FILE).write_text("written by avssl make-demo-data; this folder may be regenerated\n")
    # a world of another config (or a half-written one) is replaced, not mixed with the new one
    (path / WORLD_FILE).unlink(missing_ok=True)
    for name in OWNED_DIRS:
        if (path / name).exists():
            shutil.rmtree(path / name)

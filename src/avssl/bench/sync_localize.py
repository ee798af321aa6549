"""Sync-check and localization accuracy on held-out demo-world clips: pretrained vs random init.

A method's tiny config pretrains on the clips of a demo world (seed --train-seed); the judging runs
on the clips of another world (seed --test-seed), never trained on.
- Sync-check: each held-out clip is decoded and re-encoded with its audio shifted by each of --shifts
  seconds (positive: audio late; silence padded, the end trimmed); `avssl sync-check`'s estimate is a
  hit when it is within +-1 video frame of the shift. Chance over +-2 s at 25 fps is 3/101.
- Localization: `avssl localize`'s maps of the held-out clips in the pointing game against the boxes
  of the sounding objects (avssl.evaluate.localize_truth), beside a centre prior, the hit rate of a
  uniformly random point (the mean box share of the frame) and motion maps (each pixel's change over
  the window, no model, no audio: in this world every sound comes from a moving object, so a sound
  map that follows the sound and not just the motion has to beat them); --maps names the map kinds judged.
The same numbers for `random:CONFIG` (the same architecture untrained). Prints one JSON object.

examples:
  avssl bench sync-localize --steps 2000 --out sync_localize.json
  avssl bench sync-localize --config avts-tiny --steps 300 --clips 10 --shifts=-0.8,0,0.4
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any, Callable

import numpy as np

from avssl.errors import UsageError

log = logging.getLogger(__name__)

SHIFTS = (-0.8, -0.3, 0.0, 0.4, 1.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="avts-tiny", help="bundled config or YAML path (default avts-tiny)")
    parser.add_argument("--steps", type=int, default=2000, help="pretraining steps (default 2000)")
    parser.add_argument("--checkpoint", help="judge this checkpoint instead of pretraining one")
    parser.add_argument("--clips", type=int, default=20, help="held-out clips judged (default 20)")
    parser.add_argument("--shifts", default=",".join(f"{s:g}" for s in SHIFTS),
                        help="audio shifts in seconds, comma-separated (default %(default)s)")
    parser.add_argument("--scale", type=float, default=1.0, help="localize --scale (default 1)")
    parser.add_argument("--maps", default="raw,contrast,occlusion,occlusion-contrast,gradient",
                        help="localize --map kinds judged, comma-separated (default %(default)s)")
    parser.add_argument("--train-seed", type=int, default=0, help="seed of the pretraining world (default 0)")
    parser.add_argument("--test-seed", type=int, default=1, help="seed of the held-out world (default 1)")
    parser.add_argument("--work", default=".cache/bench-sync-localize", help="folder for worlds, runs and shifted clips")
    parser.add_argument("--workers", type=int, default=1, help="loader and world-writing processes (default 1)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from avssl.data.synthetic import generate_world, preset
    from avssl.evaluate.localize import MODES

    shifts = parse_shifts(args.shifts)
    maps = [m for m in args.maps.split(",") if m]
    if not maps or any(m not in MODES for m in maps):
        raise UsageError(f"--maps: comma-separated kinds among {', '.join(MODES)}, got {args.maps!r}")
    if args.clips < 1 or args.steps < 1:
        raise UsageError("--clips and --steps must be positive")
    started = time.perf_counter()
    test_root = os.path.join(args.work, f"world-{args.test_seed}")
    test_world = generate_world(test_root, preset("default", seed=args.test_seed), "default", args.workers, False)
    records = [r for r in test_world["files"] if r["kind"] == "clip"][:args.clips]
    checkpoint = args.checkpoint or pretrained_checkpoint(args)
    clips = shifted_clips(test_root, records, shifts, os.path.join(args.work, f"shifted-{args.test_seed}"))
    result: dict[str, Any] = {"config": args.config, "steps": None if args.checkpoint else args.steps,
                              "checkpoint": checkpoint, "held_out_clips": len(records), "shifts": list(shifts)}
    for name, model in (("pretrained", checkpoint), ("random", f"random:{args.config}")):
        log.info("bench sync-localize: judging %s (%.0f s so far)", model, time.perf_counter() - started)
        result[name] = {"sync": judge_sync(model, clips),
                        "localize": {mode: judge_localize(model, test_root, test_world, records, args.scale, mode)
                                     for mode in maps}}
    frame_size = result["pretrained"]["localize"][maps[0]]["frame_size"]
    result["localize_baselines"] = baselines(test_world, records, frame_size)
    result["localize_baselines"]["motion"] = judge_motion(checkpoint, test_root, test_world, records, args.scale)
    result["chance_sync_within_1_frame"] = 3 / (2 * 2.0 * 25 + 1)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def parse_shifts(text: str) -> tuple[float, ...]:
    try:
        shifts = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--shifts must be numbers separated by commas, got {text!r}") from None
    if not shifts or any(abs(s) >= 2.0 for s in shifts):
        raise UsageError(f"--shifts must be inside the searched +-2 s, got {text!r}")
    return shifts


def pretrained_checkpoint(args: argparse.Namespace) -> str:
    """Pretrain args.config for args.steps on the clips of the training world (resumed when present)."""
    from avssl.config.bundled import resolve_config_path
    from avssl.data.probing import build_manifest, probe_paths
    from avssl.data.synthetic import generate_world, preset
    from avssl.methods.configs import load_config
    from avssl.train.engine import pretrain

    root = os.path.join(args.work, f"world-{args.train_seed}")
    world = generate_world(root, preset("default", seed=args.train_seed), "default", args.workers, False)
    paths = [os.path.join(root, r["path"]) for r in world["files"] if r["kind"] == "clip"]
    manifest = os.path.join(args.work, f"train-{args.train_seed}.csv")
    build_manifest(paths, probe_paths(paths, workers=0, progress=False)).save(manifest)
    config = load_config(resolve_config_path(args.config),
                         [f"trainer.max_steps={args.steps}", f"data.num_workers={args.workers}"])
    name = os.path.splitext(os.path.basename(args.config))[0]
    return str(pretrain(config, manifest, os.path.join(args.work, "runs", f"{name}-{args.steps}")))


def shift_audio(audio: np.ndarray, shift: float, rate: int) -> np.ndarray:
    """[N] audio delayed by `shift` seconds (advanced when negative): zeros fill, the length is kept."""
    n = int(round(abs(shift) * rate))
    if n == 0:
        return audio.copy()
    pad = np.zeros(min(n, len(audio)), dtype=audio.dtype)
    if shift > 0:
        return np.concatenate([pad, audio[:len(audio) - len(pad)]])
    return np.concatenate([audio[len(pad):], pad])


def write_shifted(src: str, dst: str, shift: float) -> str:
    """Decode `src` (every frame, its audio at its own rate), shift the audio, re-encode into `dst`."""
    from avssl.media import MediaReader, write_media

    if os.path.isfile(dst):
        return dst
    with MediaReader(src) as reader:
        info = reader.info
        frames = reader.read_video(0.0, info.duration).numpy()
        rate = int(info.audio_sample_rate)
        audio = reader.read_audio(0.0, info.duration, sample_rate=rate).numpy()
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".tmp.mp4"
    write_media(tmp, frames, info.video_fps, shift_audio(audio, shift, rate), rate, fmt="mp4")
    os.replace(tmp, dst)
    return dst


def shifted_clips(root: str, records: list[dict], shifts: tuple[float, ...], folder: str) -> list[tuple[str, float]]:
    """(path, shift) of every held-out clip re-encoded at every shift."""
    out = []
    for record in records:
        stem = os.path.splitext(os.path.basename(record["path"]))[0]
        for shift in shifts:
            dst = os.path.join(folder, f"{stem}_shift{shift:+.2f}.mp4")
            out.append((write_shifted(os.path.join(root, record["path"]), dst, shift), shift))
    return out


def judge_sync(model: str, clips: list[tuple[str, float]]) -> dict[str, Any]:
    """Share of estimates within +-1 frame of the true shift, overall and per shift, and within +-0.2 s;
    mean |error|; confidences."""
    from avssl.evaluate.av_model import load_av_model
    from avssl.evaluate.sync_check import sync_check_file

    loaded = load_av_model(model)
    rows = []
    for path, shift in clips:
        est = sync_check_file(loaded, path)
        rows.append((shift, est.offset, abs(est.offset - shift) <= 1.0 / est.fps + 1e-6, est.confidence, est.confident))
    shifts, estimates, hits, conf, confident = map(np.asarray, zip(*rows))
    near = np.abs(estimates - shifts) <= 0.2 + 1e-6
    per_shift = {f"{s:+g}": float(hits[shifts == s].mean()) for s in sorted(set(shifts.tolist()))}
    return {"within_1_frame": float(hits.mean()), "within_0.2_s": float(near.mean()), "per_shift": per_shift,
            "mean_abs_error_s": float(np.abs(estimates - shifts).mean()),
            "median_confidence": float(np.median(conf)), "confident_share": float(confident.mean()),
            "within_1_frame_when_confident": float(hits[confident].mean()) if confident.any() else None,
            "n": len(rows),
            "estimates": [[float(s), float(e), round(float(c), 3)] for s, e, c in zip(shifts, estimates, conf)]}


def judge_localize(model: str, root: str, world: dict, records: list[dict], scale: float,
                   mode: str = "raw") -> dict[str, Any]:
    """Pointing-game hit share of the model's maps over the audible events of the clips."""
    from avssl.evaluate.av_model import load_av_model
    from avssl.evaluate.localize import localize_file

    loaded = load_av_model(model)
    return score_maps(lambda path: localize_file(loaded, path, scale=scale, mode=mode), root, world, records)


def judge_motion(model: str, root: str, world: dict, records: list[dict], scale: float) -> dict[str, Any]:
    """The same score for motion maps (avssl.evaluate.localize.motion_maps) over the windows and frames
    `model`'s config decodes: no model, no audio, only where the pictures change."""
    from avssl.evaluate.av_model import load_av_model
    from avssl.evaluate.localize import motion_maps

    loaded = load_av_model(model)
    return score_maps(lambda path: motion_maps(loaded, path, scale), root, world, records)


def score_maps(maps_of: Callable[[str], Any], root: str, world: dict, records: list[dict]) -> dict[str, Any]:
    """Pointing game and box peak rank of the SoundMaps `maps_of(path)` over the records' audible events."""
    from avssl.evaluate.localize_truth import box_peak_ranks, pointing_game, sounding_boxes

    hits: list[bool] = []
    ranks: list[float] = []
    for record in records:
        maps = maps_of(os.path.join(root, record["path"]))
        boxes = sounding_boxes(world, record)
        hits += pointing_game(maps.maps, maps.times, maps.window_seconds, boxes)
        ranks += box_peak_ranks(maps.maps, maps.times, maps.window_seconds, boxes)
    size = maps.maps.shape[1:]
    return {"pointing_game": float(np.mean(hits)), "box_peak_rank": float(np.mean(ranks)), "events": len(hits),
            "frame_size": list(size),
            "map_size": list(maps.map_size), "input_size": list(maps.input_size)}


def baselines(world: dict, records: list[dict], frame_size: list[int]) -> dict[str, float]:
    """The centre prior's pointing game and box peak rank, and a uniformly random point's expected hit
    rate (1 s windows)."""
    from avssl.evaluate.localize_truth import box_peak_ranks, box_share, centre_prior, pointing_game, sounding_boxes

    prior = centre_prior(tuple(frame_size))
    hits, ranks, boxes = [], [], []
    for record in records:
        events = sounding_boxes(world, record)
        times = np.arange(int(record["duration"])).astype(float)
        maps = np.repeat(prior[None], len(times), 0)
        hits += pointing_game(maps, times, 1.0, events)
        ranks += box_peak_ranks(maps, times, 1.0, events)
        boxes += events
    return {"centre_prior": float(np.mean(hits)), "centre_prior_box_peak_rank": float(np.mean(ranks)),
            "random_point": box_share(boxes, tuple(frame_size))}

"""Write the synthetic demo world (real h264+aac mp4 files) and its labelled sets into OUT.

The world: objects of several shape/colour classes appear, fall, bounce and get thrown, and every
impact makes a sound whose timbre belongs to the object's class, on the sample where it happens.
OUT receives unlabeled 10 s clips (clips/), long movies with their own palette, theme music and
recurring cast (movies/), a UCF101-style action set with official split lists (ucf/), an ESC-50-style
sound set with meta/esc50.csv (esc/), and world.json with the ground truth of every file.

Deterministic from --seed. Cached: when OUT already holds a complete world of the same seed and
scale, the command says so and returns at once. --scale tiny takes seconds (tests), default well
under a minute on 2 cores (the demo), large minutes (closer to real scale).

example:
  avssl make-demo-data demo_data --seed 0 --scale default --workers 2
"""

from __future__ import annotations

import argparse
import os
import time

from avssl.data.synthetic.config import PRESETS, preset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="OUT", help="folder to write the world into (created; must be empty or hold a demo world)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same files")
    parser.add_argument("--scale", choices=sorted(PRESETS), default="default", help="size preset (default: default)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all available cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.data.synthetic.world import generate_world, is_complete

    cfg = preset(args.scale, seed=args.seed)
    check_output(args.out, "OUT", folder=True)
    if is_complete(args.out, cfg):
        print(f"{args.out} already holds a complete demo world (scale {args.scale}, seed {args.seed}, "
              f"config {cfg.config_hash()}): nothing to do")
        return 0
    started = time.perf_counter()
    world = generate_world(args.out, cfg, scale=args.scale, workers=args.workers, progress=not args.no_progress)
    counts: dict[str, int] = {}
    for rec in world["files"]:
        counts[rec["kind"]] = counts.get(rec["kind"], 0) + 1
    size = sum(os.path.getsize(os.path.join(args.out, rec["path"])) for rec in world["files"])
    print(f"wrote the demo world (scale {args.scale}, seed {args.seed}) to {args.out} in "
          f"{time.perf_counter() - started:.1f} s: {counts.get('clip', 0)} clips, {counts.get('movie', 0)} movies, "
          f"{counts.get('ucf', 0)} UCF-style clips, {counts.get('esc', 0)} ESC-style sounds, {size / 1e6:.1f} MB")
    return 0

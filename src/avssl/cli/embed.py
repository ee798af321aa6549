"""Embed media files with a trained model: per-window vectors with their timestamps, or one per file.

PATH: media files, folders (walked for media files) or manifests of `avssl probe` (.csv/.parquet).
MODEL: a run dir of `avssl pretrain`, a checkpoint (.ckpt), an export dir of `avssl export`, or
random:CONFIG (a random-init baseline). Window i of a file starts at i * STRIDE seconds (a whole
number of the model's frames: starts lie exactly on its frame grid) and covers WINDOW seconds;
by default one window is the model's clip and STRIDE = WINDOW; a longer window averages the clips
spread evenly over it. --pool mean keeps one row per file (the mean of its windows). --space
backbone: the encoders' features; joint: the method's projection heads, L2-normalised (the space
where it compares video with audio). FILE (.parquet or .npz, by its suffix) holds path, start, end
and video and/or audio vectors, and records the space, modality, windows, the model, its
checkpoint's sha256 and config (JSON). Files are decoded window by window: memory stays flat on long
files. A file that cannot be decoded or lacks a needed stream is skipped and listed in the JSON
summary (stdout, and FILE.json); --strict stops on it with exit 1. --device auto (the default) runs on
the best device available (CUDA, else MPS, else the CPU).

examples:
  avssl embed movie.mp4 --model runs/avts-tiny --out movie.parquet
  avssl embed videos/ --model runs/avts-tiny --out clips.npz --modality both --space joint --pool mean
  avssl embed ucf1.csv --model export/avts --out ucf1.parquet --window 2 --stride 0.5
  avssl embed talk.mp4 --model random:avts-tiny --out baseline.npz --modality audio
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from avssl.models.device import DEVICE_HELP

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="media files, folders or manifests")
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="run dir, checkpoint, export dir, or random:CONFIG")
    parser.add_argument("--out", required=True, metavar="FILE", help="embeddings file to write (.parquet or .npz)")
    parser.add_argument("--modality", choices=("video", "audio", "both"), default="video",
                        help="which embeddings (default video); both needs both streams in a file")
    parser.add_argument("--space", choices=("backbone", "joint"), default="backbone",
                        help="backbone: encoder features (default); joint: projection heads, L2-normalised")
    parser.add_argument("--window", type=float, metavar="SECONDS",
                        help="window length (default: the model's clip)")
    parser.add_argument("--stride", type=float, metavar="SECONDS",
                        help="seconds between window starts (default: the window), a whole number of frames")
    parser.add_argument("--pool", choices=("none", "mean"), default="none",
                        help="none: one row per window (default); mean: one row per file")
    parser.add_argument("--batch", type=int, default=16, metavar="N", help="clips per model batch (default 16)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--strict", action="store_true", help="stop with exit 1 on the first file that fails")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.errors import UsageError
    from avssl.evaluate.embed_files import EmbedStopped, collect_inputs, embed_paths, run_metadata
    from avssl.evaluate.embed_io import check_suffix, save_embeddings
    from avssl.evaluate.pretrained import load
    from avssl.models.device import resolve_device

    check_suffix(args.out)
    check_output(args.out, "--out")  # before any decoding
    check_output(args.out + ".json", "--out")
    args.device = resolve_device(args.device)
    paths = collect_inputs(args.paths)
    if not paths:
        raise UsageError(f"no media files in {' '.join(args.paths)}")
    started = time.perf_counter()
    model = load(args.model, args.device)
    options = {"modality": args.modality, "space": args.space, "window": args.window, "stride": args.stride}
    metadata = run_metadata(model, pool=args.pool, **options)
    try:
        result = embed_paths(model, paths, pool=args.pool, batch=args.batch, strict=args.strict, **options)
    except EmbedStopped as err:
        log.error("%s", err)
        return 1
    summary = {"model": args.model, "method": model.config.method.name, "space": args.space,
               "modality": args.modality, "pool": args.pool, "window": metadata["window"],
               "stride": metadata["stride"], "files": len(paths), "embedded": len(result.embedded),
               "rows": len(result.table), "failed_count": len(result.failures), "failed": result.failures,
               "seconds": round(time.perf_counter() - started, 2)}
    if len(result.table) == 0:
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")
        log.error("no file gave embeddings (%d failed)", len(result.failures))
        return 1
    result.table.metadata = metadata
    save_embeddings(args.out, result.table)
    summary["out"] = os.path.abspath(args.out)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    if result.failures:
        log.warning("%d of %d files skipped: %s", len(result.failures), len(paths),
                    ", ".join(f["path"] for f in result.failures))
    return 0

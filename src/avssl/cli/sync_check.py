"""Estimate each file's audio-video offset with a synchronisation model, with a confidence and a plot.

The audio is slid over +-MAX_OFFSET seconds against the video in steps of one video frame; each
offset is scored with the model's sync score (AVTS: the distance between the video and audio
embeddings; other methods: cosine similarity in the joint space) averaged over video windows every
--hop seconds. The offset is positive when the audio comes LATE (a sound is heard after the frame
that shows its cause). Confidence = (best score - best score at least one audio window away) /
the score curve's frame-to-frame jitter (a robust standard deviation); below --threshold the
estimate is reported as NOT confident. A file that cannot be read (no audio, corrupt, too short) is reported and skipped;
the exit code is 1 when no file could be checked, or under --strict when any could not.

With --out DIR: per file `<stem>.json` (offset_seconds, offset_frames, confidence, confident,
offsets_seconds, scores, windows per offset) and `<stem>.png` (score against offset).

examples:
  avssl sync-check talk.mp4 --model runs/avts/checkpoints/last.ckpt --out sync/
  avssl sync-check clips/*.mp4 --model random:avts-tiny --max-offset 1.0
"""

from __future__ import annotations

import argparse
import logging
import math
import sys

from avssl.errors import UsageError
from avssl.models.device import DEVICE_HELP

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avssl.evaluate.sync_check import CONFIDENT, HOP, MAX_OFFSET

    parser.add_argument("paths", nargs="+", metavar="VIDEO", help="media files with video and audio")
    parser.add_argument("--model", required=True, metavar="M",
                        help="a .ckpt of `avssl pretrain`, or random:CONFIG (e.g. random:avts-tiny)")
    parser.add_argument("--out", metavar="DIR", help="write <stem>.json and <stem>.png per file here")
    parser.add_argument("--max-offset", type=float, default=MAX_OFFSET, metavar="S",
                        help=f"largest offset searched either way, seconds (default {MAX_OFFSET:g})")
    parser.add_argument("--hop", type=float, default=HOP, metavar="S",
                        help=f"seconds between the video windows scored (default {HOP:g})")
    parser.add_argument("--threshold", type=float, default=CONFIDENT, metavar="C",
                        help=f"confidence below which an estimate is reported as not confident (default {CONFIDENT:g})")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N", help="windows per forward pass")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file could not be checked")


def check_arguments(args: argparse.Namespace) -> None:
    for option in ("max_offset", "hop"):
        value = getattr(args, option)
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"--{option.replace('_', '-')} must be a positive number of seconds, got {value}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    if not math.isfinite(args.threshold):
        raise UsageError(f"--threshold must be a number, got {args.threshold}")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.evaluate.av_model import load_av_model
    from avssl.evaluate.sync_check import output_names, sync_check_file, write_estimate
    from avssl.media import MediaError
    from avssl.models.device import resolve_device

    check_arguments(args)
    if args.out:
        check_output(args.out, "--out", folder=True)
    args.device = resolve_device(args.device)
    loaded = load_av_model(args.model, args.device)
    failed = []
    for path, name in zip(args.paths, output_names(args.paths)):
        try:
            estimate = sync_check_file(loaded, path, args.max_offset, args.hop, args.threshold, args.batch_size)
        except (MediaError, UsageError) as err:
            message = str(err) if path in str(err) else f"{path}: {err}"
            print(f"avssl sync-check: skipped {message}", file=sys.stderr)
            failed.append(path)
            continue
        print(estimate.describe())
        if args.out:
            json_path, png_path = write_estimate(estimate, args.out, name)
            log.info("wrote %s and %s", json_path, png_path)
    if failed:
        print(f"avssl sync-check: {len(failed)} of {len(args.paths)} file(s) could not be checked", file=sys.stderr)
    if len(failed) == len(args.paths) or (failed and args.strict):
        return 1
    return 0

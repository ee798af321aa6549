"""Probe media files in parallel and write a manifest (CSV, or Parquet when --out ends .parquet).

Each file gets one row: path, duration, has_video, has_audio, video_fps, width, height, num_frames,
audio_sample_rate, audio_channels, label, split, group, error. A file that cannot be used gets a
row whose `error` says why (zero-byte file, truncated, not a media file, timeout, ...); the run
still exits 0 and prints a health summary. Exit 2 on bad usage (missing path, unknown dataset).

PATH is files and/or folders (walked for media extensions), or with --dataset the dataset root
in its official layout: ucf101 and hmdb51 need --split 1|2|3; esc50 keeps the fold in `split`;
kinetics-sounds needs --class-list; vggsound takes --name-template (default video/{ytid}_{start:06d}.mp4).

examples:
  avssl probe videos/ more/clip.mp4 --out manifest.csv --labels-from-dirs --workers 4
  avssl probe /data/UCF101 --dataset ucf101 --split 1 --out ucf101_split1.csv
  avssl probe /data/ESC-50 --dataset esc50 --out esc50.parquet --timeout 10
"""

from __future__ import annotations

import argparse
import logging
import math
import os

from avssl.errors import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avssl.data.adapters import ADAPTERS
    from avssl.data.probing import DEFAULT_TIMEOUT_S

    parser.add_argument("paths", nargs="+", metavar="PATH", help="media files or folders; with --dataset, its root")
    parser.add_argument("--out", required=True, metavar="MANIFEST", help="output manifest (.csv or .parquet)")
    parser.add_argument("--labels-from-dirs", action="store_true", help="label each file by its parent folder")
    parser.add_argument("--dataset", metavar="NAME", help=f"official layout: {', '.join(ADAPTERS)}")
    parser.add_argument("--split", type=int, metavar="N", help="official split number (ucf101, hmdb51)")
    parser.add_argument("--class-list", metavar="FILE", help="kinetics-sounds: file with one class name per line")
    parser.add_argument("--name-template", metavar="T", help="vggsound: file name template under the root")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="probing processes (default: CPU count, at most 8; 0 = in this process, no timeout)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"seconds per file before it is reported as a timeout (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.data.manifest_io import manifest_format
    from avssl.data.probing import build_manifest, probe_paths

    manifest_format(args.out)
    check_output(args.out, "--out")
    if args.workers is not None and args.workers < 0:
        raise UsageError(f"--workers must be >= 0, got {args.workers}")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    paths, labels = _collect(args)
    log.info("probing %d files with %s workers", len(paths), "default" if args.workers is None else args.workers)
    rows = probe_paths(paths, workers=args.workers, timeout=args.timeout, progress=not args.no_progress)
    manifest = build_manifest(paths, rows, labels)
    manifest.save(args.out)
    print(manifest.summary().format())
    print(f"wrote {args.out} ({len(manifest)} rows)")
    return 0


def _collect(args: argparse.Namespace) -> tuple[list[str], dict[str, tuple[str, str, str]]]:
    """The paths to probe and, where known, (label, split, group) per path."""
    from avssl.data.adapters import get_adapter
    from avssl.data.discovery import discover_media

    if args.dataset is None:
        for option in ("split", "class_list", "name_template"):
            if getattr(args, option) is not None:
                raise UsageError(f"--{option.replace('_', '-')} needs --dataset")
        paths = discover_media(args.paths)
        if not paths:
            raise UsageError(f"no media files under {', '.join(args.paths)}")
        if not args.labels_from_dirs:
            return paths, {}
        return paths, {p: (os.path.basename(os.path.dirname(p)), "", "") for p in paths}
    if args.labels_from_dirs:
        raise UsageError("--labels-from-dirs and --dataset exclude each other (the dataset gives the labels)")
    adapter = get_adapter(args.dataset)
    if len(args.paths) != 1:
        raise UsageError(f"--dataset {args.dataset} takes one PATH (the dataset root), got {len(args.paths)}")
    root = args.paths[0]
    if not os.path.isdir(root):
        raise UsageError(f"{root}: dataset root is not a folder")
    entries = adapter(root, args.split, class_list=args.class_list, name_template=args.name_template)
    labels = {e.path: (e.label, e.split, e.group) for e in entries}
    if len(labels) != len(entries):
        raise UsageError(f"{root}: the {args.dataset} annotations list some files twice")
    return [e.path for e in entries], labels

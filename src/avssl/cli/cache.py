"""Build optional pre-decoded caches of a manifest's files that training reads instead of decoding.

  audio:  mono float32 waveform at --sample-rate (default 16000), one memory-mapped .npy per file.
  frames: RGB uint8 frames at --fps with the short side resized to --size, one .npy per file.

Entries land in OUT/audio-<hash>/ or OUT/frames-<hash>/, the hash naming what they hold; point a
training config at OUT with data.cache_dir=OUT. With --config, the rate, fps and size are the ones
that config's loader reads (data.clip.sample_rate, data.clip.fps, the decode size for
data.video_augment.size), so the cache matches it. Re-running skips files already cached.

Example:
  avssl cache audio demo/manifest.csv --out .cache/clips --config avts-tiny
  avssl cache frames demo/manifest.csv --out .cache/clips --fps 25 --size 128 --workers 2
  avssl pretrain --config avts-tiny --data demo/manifest.csv --out runs/a data.cache_dir=.cache/clips
"""

from __future__ import annotations

import argparse
import json
import logging

from avssl.errors import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["audio", "frames"], help="what to cache")
    parser.add_argument("manifest", help="manifest (CSV or Parquet) from `avssl probe`")
    parser.add_argument("--out", required=True, help="cache folder (data.cache_dir of the training config)")
    parser.add_argument("--config", help="take the rate, fps and size from this training config (file or bundled name)")
    parser.add_argument("--sample-rate", type=int, help="audio: output rate in Hz (default 16000)")
    parser.add_argument("--fps", type=float, help="frames: frames per second kept (default 25)")
    parser.add_argument("--size", type=int, help="frames: short side in pixels (default 128)")
    parser.add_argument("--workers", type=int, default=1, help="processes decoding in parallel")
    parser.add_argument("--backend", choices=["pyav", "torchcodec"], help="media backend (default pyav)")


def _spec(args: argparse.Namespace):  # noqa: ANN202 - a CacheSpec
    from avssl.data.cache import AudioCacheSpec, FramesCacheSpec

    rate, fps, size = args.sample_rate, args.fps, args.size
    if args.config:
        from avssl.config.bundled import resolve_config_path
        from avssl.data.clip_io import decode_short_side
        from avssl.methods.configs import load_config

        data = load_config(resolve_config_path(args.config)).data
        if (args.kind == "audio" and rate) or (args.kind == "frames" and (fps or size)):
            raise UsageError("give either --config or --sample-rate / --fps / --size, not both")
        rate, fps, size = data.clip.sample_rate, data.clip.fps, decode_short_side(data.video_augment.size)
    if args.kind == "audio":
        if args.fps or args.size:
            raise UsageError("--fps and --size are for `avssl cache frames`")
        rate = 16000 if rate is None else rate
        if rate <= 0:
            raise UsageError(f"--sample-rate must be positive, got {rate}")
        return AudioCacheSpec(sample_rate=int(rate))
    if args.sample_rate:
        raise UsageError("--sample-rate is for `avssl cache audio`")
    fps, size = 25.0 if fps is None else fps, 128 if size is None else size
    if fps <= 0 or size <= 0:
        raise UsageError(f"--fps and --size must be positive, got {fps} and {size}")
    return FramesCacheSpec(fps=float(fps), short_side=int(size))


def run(args: argparse.Namespace) -> int:
    from avssl.data.cache import build_cache
    from avssl.data.manifest import Manifest

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    spec = _spec(args)
    try:
        manifest = Manifest.load(args.manifest)
    except (OSError, ValueError) as err:
        raise UsageError(f"{args.manifest}: cannot read the manifest ({err})") from err
    usable = manifest.filter("video" if args.kind == "frames" else "audio")
    paths = [str(p) for p in usable.strings("path")]
    log.info("caching %s of %d files (%d rows of %s left out: unusable or without %s) into %s",
             args.kind, len(paths), len(manifest) - len(usable), args.manifest, args.kind, args.out)
    summary = build_cache(paths, args.out, spec, workers=args.workers, backend=args.backend)
    summary["spec"] = spec.describe()
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 1 if summary["failed"] else 0

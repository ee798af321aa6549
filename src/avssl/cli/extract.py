"""Extract video-level features of a manifest with a pretrained model (or a random-init baseline).

CKPT is a `RUN_DIR/checkpoints/last.ckpt` of `avssl pretrain` (loaded with weights_only=True; the model
is rebuilt from the config stored in it) or `random:CONFIG` (a bundled config name such as avts-tiny,
or a YAML path): the same architecture freshly initialised with the config's seed, the baseline.
Each file gives --clips-per-video clips spread uniformly over it (centre crop, or three crops along
the long side); their backbone features (--space embedding: the method's projection heads,
L2-normalised, the joint space for cross-modal retrieval) are averaged to one row per file.
FEATURES.npz holds `video` and/or `audio` (float32 N x D), the manifest's `path`, `label`, `split`,
`group` columns, and the model's identity and the feature space (`model`, `space`): `avssl eval
retrieval --cross-modal` takes only files of --space embedding (backbone audio and video features
live in unrelated spaces: cross-modal recall on them is chance). --device auto (the default) runs on
CUDA when available, else MPS, else the CPU. A progress bar on a terminal (else a log line every 30 s).
--modality both keeps only files with both streams (listed in the summary as left out); a file that
fails to decode is skipped and listed, and --strict stops on it (exit 1). A JSON summary goes to
stdout and to FEATURES.npz's name with `.json` appended.

examples:
  avssl extract --checkpoint runs/avts-tiny/checkpoints/last.ckpt --data ucf1.csv --out ucf1.npz --modality both
  avssl extract --checkpoint random:avts-tiny --data ucf1.csv --out ucf1_random.npz --modality both
  avssl extract --checkpoint run/checkpoints/last.ckpt --data ucf1.csv --out joint.npz --modality both --space embedding
  avssl extract --checkpoint run/checkpoints/last.ckpt --data esc50.csv --out esc50.npz --modality audio --clips-per-video 5
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from avssl.errors import UsageError
from avssl.models.device import DEVICE_HELP

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="checkpoint of `avssl pretrain`, or random:CONFIG for a random-init baseline")
    parser.add_argument("--data", required=True, metavar="MANIFEST", help="manifest from `avssl probe`")
    parser.add_argument("--out", required=True, metavar="FEATURES.npz", help="features file to write")
    parser.add_argument("--modality", choices=("video", "audio", "both"), default="video",
                        help="which features (default video); both keeps files with both streams")
    parser.add_argument("--clips-per-video", type=int, default=1, metavar="N",
                        help="clips per file, spread uniformly, features averaged (default 1: the centre clip)")
    parser.add_argument("--crops", choices=("center", "three"), default="center",
                        help="spatial crops per clip (default center)")
    parser.add_argument("--space", choices=("backbone", "embedding"), default="backbone",
                        help="backbone: encoder features (default; linear probe, kNN, class retrieval); embedding: "
                             "the method's projection heads, L2-normalised (the joint audio-video space: "
                             "cross-modal retrieval)")
    parser.add_argument("--batch", type=int, default=32, metavar="N", help="clips per model batch (default 32)")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="decoding processes (default 2; 0: main)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--strict", action="store_true", help="stop with exit 1 on the first file that fails")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.data.manifest import Manifest
    from avssl.evaluate.extract import ExtractionStopped, extract_features
    from avssl.evaluate.features import file_sha256, save_features
    from avssl.evaluate.model_loading import load_model, model_identity
    from avssl.models.device import resolve_device

    if not os.path.isfile(args.data):
        raise UsageError(f"--data {args.data}: manifest not found")
    check_output(args.out, "--out")  # before any decoding
    check_output(args.out + ".json", "--out")
    args.device = resolve_device(args.device)
    try:
        manifest = Manifest.load(args.data)
    except (ValueError, KeyError) as err:
        raise UsageError(f"--data {args.data}: {err}") from None
    started = time.perf_counter()
    model = load_model(args.checkpoint, args.device)
    try:
        result = extract_features(manifest, model.method, model.config, modality=args.modality,
                                  clips_per_video=args.clips_per_video, crops=args.crops, batch_size=args.batch,
                                  workers=args.workers, device=args.device, strict=args.strict,
                                  space=args.space)
    except ExtractionStopped as err:
        log.error("%s", err)
        return 1
    summary = {"checkpoint": args.checkpoint, "checkpoint_step": model.step, "random_init": model.random_init,
               "method": model.config.method.name, "manifest": os.path.abspath(args.data),
               "manifest_sha256": file_sha256(args.data), "modality": args.modality,
               "space": args.space, "clips_per_video": args.clips_per_video, "crops": args.crops,
               "rows": int(len(result.rows)),
               "failed": result.failures, "left_out": result.left_out,
               "seconds": round(time.perf_counter() - started, 2)}
    if len(result.rows) == 0:
        print(json.dumps(summary))
        log.error("no file of %s gave features (%d failed, %d left out for --modality %s)", args.data,
                  len(result.failures), len(result.left_out), args.modality)
        return 1
    rows = manifest.take(result.rows)
    save_features(args.out, path_column=rows.strings("path"), label=rows.strings("label"),
                  split=rows.strings("split"), group=rows.strings("group"), video=result.video, audio=result.audio,
                  model=model_identity(args.checkpoint, args.space), space=args.space)
    for name in ("video", "audio"):
        value = getattr(result, name)
        if value is not None:
            summary[f"{name}_dim"] = int(value.shape[1])
    summary["out"] = os.path.abspath(args.out)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0

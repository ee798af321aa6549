"""Fine-tune a pretrained video encoder (or the AVCL audio-visual classifier) on a labelled manifest.

Trains every weight on the manifest's `train` rows and tests on its `test` rows: each test file's
prediction is the average of the logits of clips_per_video clips spread uniformly over it. Give
--data once per official split (UCF101/HMDB51: 3); top-1 is reported per split and as the mean.
CKPT is a checkpoint of `avssl pretrain` or random:CONFIG (training from scratch, the baseline).
The model is `video` (video encoder + linear head) unless the checkpoint's method is avcl (then `av`:
AVClassifier with AMFM fusion); model=video|av chooses. key=value options (assumed defaults):
model=auto max_steps=200 batch_size=8 lr=0.001 weight_decay=0.0001 dropout=0.5 label_smoothing=0
clips_per_video=3 num_workers=2 seed=0 (AdamW, cosine schedule). RUN_DIR receives result.json and,
per split, the fine-tuned weights (`splitN.pt`). JSON result on stdout.

examples:
  avssl finetune --checkpoint runs/avts-tiny/checkpoints/last.ckpt --data ucf1.csv --out runs/ft max_steps=300
  avssl finetune --checkpoint random:avts-tiny --data ucf1.csv --data ucf2.csv --data ucf3.csv --out runs/ft-scratch
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from avssl.errors import UsageError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="checkpoint of `avssl pretrain`, or random:CONFIG (from scratch)")
    parser.add_argument("--data", required=True, action="append", metavar="MANIFEST",
                        help="labelled manifest with train and test rows; repeat for several splits")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="folder for result.json and weights")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="options, e.g. max_steps=50 lr=0.01")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")


def _splits(paths: list[str], batch_size: int) -> list[tuple[str, Any, Any, dict]]:
    """Every --data manifest read and checked before any training: (path, train rows, test rows, label
    index) per split; a UsageError naming the manifest when one cannot serve."""
    import numpy as np

    from avssl.data.manifest import Manifest

    splits = []
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"--data {path}: manifest not found")
        manifest = Manifest.load(path).filter("video")
        manifest = manifest.take(np.flatnonzero(manifest.strings("label") != ""))
        train, test = manifest.filter(None, split="train"), manifest.filter(None, split="test")
        if len(train) == 0 or len(test) == 0:
            raise UsageError(f"--data {path}: needs labelled rows with video in split 'train' and in 'test' "
                             f"(has {len(train)} and {len(test)})")
        if batch_size > len(train):
            raise UsageError(f"--data {path}: batch_size={batch_size} is more than its {len(train)} training files")
        splits.append((path, train, test, manifest.label_index()))
    return splits


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from avssl.config.overrides import apply_overrides
    from avssl.config.typed import from_dict
    from avssl.data.dataset import FileTable
    from avssl.evaluate.features import file_sha256
    from avssl.evaluate.finetune import FinetuneConfig, Finetuner
    from avssl.evaluate.model_loading import load_model
    from avssl.evaluate.report import provenance, public, write_json

    options = from_dict(FinetuneConfig, apply_overrides({}, args.overrides), "")
    splits = _splits(args.data, options.batch_size)  # a bad split stops the run before the first trains
    model = load_model(args.checkpoint, "cpu")
    checkpoint = None if model.random_init else args.checkpoint
    os.makedirs(args.out, exist_ok=True)
    runs = []
    for number, (path, train, test, index) in enumerate(splits, start=1):
        torch.manual_seed(options.seed)
        tuner = Finetuner(model.method, options, len(index), list(index), checkpoint, args.device)
        losses = tuner.train(FileTable.from_manifest(train), train.label_ids(index))
        result = tuner.test(FileTable.from_manifest(test), test.label_ids(index))
        torch.save({"state_dict": tuner.model.state_dict(), "class_names": list(index), "model": tuner.kind},
                    os.path.join(args.out, f"split{number}.pt"))
        runs.append({"manifest": os.path.abspath(path), "manifest_sha256": file_sha256(path), "model": tuner.kind,
                     "n_train": len(train), "first_loss": losses[0], "last_loss": losses[-1], **result})
        log.info("%s: top-1 %.4f on %d test files", path, result["top1"], result["n_test"])
    out = {"task": "finetune", "checkpoint": args.checkpoint, "checkpoint_step": model.step,
           "top1": float(np.mean([r["top1"] for r in runs])), "runs": runs, "options": vars(options)}
    config = {k: v for k, v in vars(args).items() if k not in ("verbose", "verb")}
    out["provenance"] = provenance(config, options.seed, list(args.data))
    write_json(out, os.path.join(args.out, "result.json"))
    json.dump(public(out), sys.stdout)
    sys.stdout.write("\n")
    return 0

"""Fine-tune a pretrained model on labelled manifests by a named protocol, on pretraining's engine.

RECIPE names a bundled recipe (configs/finetune/: ucf101-full, ucf101-linear, hmdb51-full,
hmdb51-linear, esc50-audio, each with a -tiny CPU-scale sibling; `default` when --recipe is not
given) or a YAML file; docs/evaluation.md states each value. Give --data once per official split
(UCF101/HMDB51: 3 manifests with `train` and `test` rows); an ESC-50 recipe takes one manifest with
the fold in its `split` column and runs its folds. Each split trains into RUN_DIR/splitN (or foldN):
config.yaml, metrics.csv, checkpoints/last.ckpt, bad_files.csv, as `avssl pretrain` writes them; run
the same command again and a stopped split resumes, a finished one is not trained again. Test:
finetune.clips_per_video clips spread over each test file, logits averaged, top-1 (clip-averaged
video-level accuracy). RUN_DIR/results.json holds each split's top1 and their mean (also on
stdout). CKPT is a checkpoint of `avssl pretrain` or random:CONFIG (from scratch, the baseline).

key=value overrides are dotted config keys (trainer.max_steps=50, finetune.mode=linear,
trainer.devices=2 trainer.strategy=ddp, trainer.logger=[csv,tensorboard]) or the short forms
max_steps, batch_size, num_workers, lr, weight_decay, dropout, label_smoothing, clips_per_video,
model, mode, seed. --device (default auto: CUDA, else MPS, else CPU) sets trainer.accelerator and
trainer.devices; overrides of those keys win. Exit codes as `avssl pretrain` (143/130 after a signal).

examples:
  avssl finetune --recipe ucf101-full --checkpoint runs/avts/checkpoints/last.ckpt --data ucf1.csv --data ucf2.csv --data ucf3.csv --out runs/ft-ucf
  avssl finetune --recipe esc50-audio-tiny --checkpoint runs/avts-tiny/checkpoints/last.ckpt --data esc50.csv --out runs/ft-esc
  avssl finetune --checkpoint random:avts-tiny --data ucf1.csv --out runs/ft-scratch max_steps=100
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from avssl.cli.pretrain import run_training
from avssl.errors import UsageError
from avssl.models.device import DEVICE_HELP

log = logging.getLogger(__name__)

# what --out may hold besides the splits' run folders
OUT_FILES = ("results.json",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="checkpoint of `avssl pretrain`, or random:CONFIG (from scratch)")
    parser.add_argument("--data", required=True, action="append", metavar="MANIFEST",
                        help="labelled manifest with train and test rows; repeat for several splits")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="folder for the splits' runs and results.json")
    parser.add_argument("--recipe", default="default", metavar="RECIPE",
                        help="bundled recipe name (e.g. ucf101-full, esc50-audio-tiny) or YAML file (default: default)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. trainer.max_steps=50 finetune.mode=linear (or max_steps=50)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--strict", action="store_true", help="stop with exit 1 on the first file that fails to decode")


def device_overrides(device: str) -> list[str]:
    """--device as trainer overrides (auto: none, the recipe's trainer.accelerator decides)."""
    import torch

    from avssl.models.device import resolve_device

    if device == "auto":
        return []
    chosen = torch.device(resolve_device(device))
    if chosen.type in ("cpu", "mps"):
        return [f"trainer.accelerator={chosen.type}", "trainer.devices=1"]
    return ["trainer.accelerator=gpu", "trainer.devices=1" if chosen.index is None else f"trainer.devices='{chosen.index}'"]


def check_out(folder: Path) -> None:
    """--out is new, empty, or a fine-tuning folder (split and fold run folders, results.json)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder")
    if not folder.exists():
        return
    others = sorted(p.name for p in folder.iterdir()
                    if p.name not in OUT_FILES and not (p.is_dir() and p.name.startswith(("split", "fold"))))
    if others:
        raise UsageError(f"--out {folder} holds other files (e.g. {others[0]}) and is not an `avssl finetune` folder: "
                         "give a new or empty folder")


def build_run(args: argparse.Namespace) -> tuple[Any, Any, Any, list[Any]]:
    """(pretrained model, run config, finetune section, splits), all checked before anything trains."""
    from avssl.evaluate.finetune_run import finetune_setup, finetune_splits

    loaded, config, section = finetune_setup(args.checkpoint, args.recipe,
                                             device_overrides(args.device) + list(args.overrides))
    check_out(Path(args.out))
    return loaded, config, section, finetune_splits(list(args.data), config, section)


def run(args: argparse.Namespace) -> int:
    from avssl.train.run_dir import is_launch_rank_zero

    logging.getLogger("lightning.pytorch").propagate = False
    loaded, config, section, splits = build_run(args)
    state = loaded.method.state_dict()
    results = []
    for split in splits:
        code, result = run_training(lambda: _train_and_test(args, config, section, split, state), log)
        if code != 0:
            return code
        results.append(result)
    if not is_launch_rank_zero():
        return 0  # another process of a DDP job: rank 0 tests and reports
    out = _summary(args, loaded, config, section, results)
    from avssl.evaluate.report import public, write_json

    write_json(out, os.path.join(args.out, "results.json"))
    json.dump(public(out), sys.stdout)
    sys.stdout.write("\n")
    return 0


def _train_and_test(args: argparse.Namespace, config: Any, section: Any, split: Any, state: Any) -> dict | None:
    from avssl.evaluate.finetune_run import train_and_test

    return train_and_test(config, section, split, Path(args.out) / split.name, state, args.checkpoint, args.device,
                          strict=args.strict)


def _summary(args: argparse.Namespace, loaded: Any, config: Any, section: Any, results: list[dict]) -> dict:
    import numpy as np

    from avssl.config.schema import config_to_dict
    from avssl.config.typed import to_dict
    from avssl.evaluate.report import provenance

    top1 = [r["top1"] for r in results]
    out = {"task": "finetune", "recipe": args.recipe, "checkpoint": args.checkpoint, "checkpoint_step": loaded.step,
           "model": results[0]["model"], "mode": section.mode, "top1": float(np.mean(top1)),
           "top1_std": float(np.std(top1)), "n_splits": len(results), "splits": results}
    config_record = {"finetune": to_dict(section), **config_to_dict(config)}
    out["provenance"] = provenance(config_record, config.seed, list(args.data))
    return out

"""Export a trained model: encoders and heads as safetensors, config.json and a model card (README.md).

CKPT is a run dir of `avssl pretrain`, its checkpoints/last.ckpt, or random:CONFIG (a random-init
baseline). DIR receives one <module>.safetensors per module of the method with weights (encoders,
projection heads, pretext heads, fusion; temporal-av's momentum encoders and feature queue are
training state and left out), config.json (the run config, what each file holds, the source
checkpoint's sha256 and step, the encoders' input shapes) and README.md (method, steps, the run's
last loss and evaluation figures found in the run dir, the training manifest with --data).
`avssl.load(DIR)` and `avssl embed --model DIR` read it. --torchscript and --onnx add traced video
and audio encoders (batch free, clip shape fixed by the config); --onnx needs
pip install 'avssl[export]'.

examples:
  avssl export runs/avts-tiny --out export/avts-tiny
  avssl export runs/avts/checkpoints/last.ckpt --out export/avts --data kinetics.csv --torchscript --onnx
  avssl export random:avts-tiny --out export/random-avts-tiny
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT", help="run dir, checkpoint of `avssl pretrain`, or random:CONFIG")
    parser.add_argument("--out", required=True, metavar="DIR", help="export folder to write")
    parser.add_argument("--data", metavar="MANIFEST", help="the manifest the run trained on (recorded with its sha256)")
    parser.add_argument("--torchscript", action="store_true", help="also write TorchScript encoders")
    parser.add_argument("--onnx", action="store_true", help="also write ONNX encoders (needs avssl[export])")


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output
    from avssl.evaluate.export import export_model

    check_output(args.out, "--out", folder=True)
    record = export_model(args.checkpoint, args.out, torchscript=args.torchscript, onnx=args.onnx, data=args.data)
    summary = {"out": args.out, "method": record["method"], "step": record["source"]["step"],
               "modules": {name: entry["file"] for name, entry in record["modules"].items()},
               "variants": record["variants"]}
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0

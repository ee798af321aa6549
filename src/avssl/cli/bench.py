"""Run a benchmark and print its result as one JSON object.

Example:
  avssl bench decode --out bench_decode.json
  avssl bench train --config avts-tiny --steps 5
  avssl bench learn --steps 600 --out learn.json
"""

from __future__ import annotations

import argparse
import importlib
import json

# benchmark name -> module under avssl.bench; each provides add_arguments(parser) and run(args) -> dict
BENCHMARKS = {
    "decode": "decode",
    "train": "train",
    "loader": "loader",
    "learn": "learn",
    "sync-localize": "sync_localize",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(f"avssl.bench.{module_name}")
        p = sub.add_parser(
            name,
            help=(module.__doc__ or "").strip().splitlines()[0],
            description=(module.__doc__ or "").strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.add_argument("--out", help="also write the JSON result to this file")
        p.set_defaults(_bench=module)


def run(args: argparse.Namespace) -> int:
    from avssl.cli.outputs import check_output

    if args.out:
        check_output(args.out, "--out")
    result = args._bench.run(args)
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0



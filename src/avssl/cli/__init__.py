"""The `avssl` command: a table of verbs, each implemented in its own module and imported lazily.

Lazy import keeps `avssl --help` instant (no torch import) and lets each verb own its arguments.
A verb module provides `add_arguments(parser)` and `run(args) -> int` (the exit code), and a
module docstring whose first line is the verb's one-line help.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from avssl.errors import UsageError

# verb -> (module under avssl.cli, one-line help shown by `avssl --help`)
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the whole pipeline on the synthetic demo world: pretrain, extract, evaluate vs random init, report"),
    "probe": ("probe", "probe media files in parallel and write a manifest (CSV or Parquet)"),
    "make-demo-data": ("make_demo_data", "write the synthetic demo world (real mp4 files) and its labelled sets"),
    "pretrain": ("pretrain", "pretrain a method on a manifest (resumable, DDP-ready)"),
    "extract": ("extract", "extract video/audio features of a manifest with a checkpoint (or random:CONFIG)"),
    "finetune": ("finetune", "fine-tune a pretrained video encoder or AV classifier on a labelled manifest"),
    "cache": ("cache", "build optional pre-extracted caches: audio (log-mel / waveform), frames"),
    "eval": ("evaluate", "evaluate features files: linear probe, kNN, retrieval, fingerprint metrics (JSON)"),
    "bench": ("bench", "benchmarks that print JSON: decode, loader, train"),
}


def _build_parser(verb: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avssl",
        description="Self-supervised audio-visual representation learning from video.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `avssl VERB --help` for a verb's options and an example.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (module_name, help_) in VERBS.items():
        if name != verb:
            sub.add_parser(name, help=help_)
            continue
        module = importlib.import_module(f"avssl.cli.{module_name}")
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            help=help_,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _requested_verb(argv: list[str]) -> str | None:
    for token in argv:
        if token in VERBS:
            return token
        if not token.startswith("-"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(_requested_verb(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except UsageError as err:
        print(f"avssl {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

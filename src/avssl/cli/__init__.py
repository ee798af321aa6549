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

import avssl
from avssl.errors import UsageError

# verb -> (module under avssl.cli, one-line help shown by `avssl --help`)
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the whole pipeline on the synthetic demo world: pretrain, extract, evaluate vs random init, report"),
    "probe": ("probe", "probe media files in parallel and write a manifest (CSV or Parquet)"),
    "make-demo-data": ("make_demo_data", "write the synthetic demo world (real mp4 files) and its labelled sets"),
    "pretrain": ("pretrain", "pretrain a method on a manifest (resumable, DDP-ready)"),
    "extract": ("extract", "extract video/audio features of a manifest with a checkpoint (or random:CONFIG)"),
    "finetune": ("finetune", "fine-tune a pretrained model by a named protocol (UCF101, HMDB51, ESC-50; full or linear), resumable"),
    "cache": ("cache", "build optional pre-extracted caches: audio (log-mel / waveform), frames"),
    "eval": ("evaluate", "evaluate features files: linear probe, kNN, retrieval, fingerprint metrics (JSON)"),
    "bench": ("bench", "benchmarks that print JSON: decode, loader, train, learn, sync-localize"),
    "embed": ("embed", "per-window (or per-file) embeddings of media files with a trained model, with timestamps (Parquet/.npz)"),
    "export": ("export", "export a trained model: encoders and heads as safetensors, config.json, model card (TorchScript/ONNX on request)"),
    "import-weights": ("import_weights", "import a video encoder from torchvision, XDC or GDT weights into an avssl encoder file"),
    "sync-check": ("sync_check", "estimate each file's audio-video offset with a sync model: offset, confidence, JSON and plot"),
    "localize": ("localize", "sound-source heatmaps over a video's frames: maps.npz, PNG overlays, mp4 with audio"),
}


def _build_parser(verb: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avssl",
        description="Self-supervised audio-visual representation learning from video.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `avssl VERB --help` for a verb's options and an example.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"avssl {avssl.__version__}",
                        help="print `avssl VERSION` and exit")
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


def _refuse_extra(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Exit 2 on arguments no option took. key=value overrides split by an option land here (argparse
    gives the positional list only its first run): say how to order them rather than just "unrecognized"."""
    verb = f"avssl {args.verb}" if getattr(args, "verb", None) else "avssl"
    overrides = [token for token in extra if "=" in token and not token.startswith("-")]
    if overrides:
        parser.exit(2, f"{verb}: error: {' '.join(overrides)}: key=value overrides must come together after "
                       f"all the options (an option between them ends their list): {verb} --option VALUE ... "
                       f"key=value key=value\n")
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(_requested_verb(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        _refuse_extra(parser, args, extra)
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
    except OSError as err:
        from avssl.cli.outputs import disk_error_line

        line = disk_error_line(err)
        if line is None:
            raise
        print(f"avssl {args.verb}: error: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

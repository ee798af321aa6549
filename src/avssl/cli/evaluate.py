"""Evaluate frozen features: linear probe, kNN, retrieval, fingerprinting metrics; JSON on stdout.

Tasks (features files are written by `avssl extract`):
  linear              standardised logistic regression, C by grouped CV on the training side: top1, top5
  knn                 cosine kNN classification (weighted or majority vote): top1, top5
  retrieval           test clips query the training clips, hit = same class: recall@1/5/10/20/50;
                      with --cross-modal: audio -> video and video -> audio, hit = same path, + median rank
                      (features of one joint space: `avssl extract ... --space embedding`)
  fingerprint-metric  references vs transformed queries in one file: map (VSC 2022 micro AP), recall@1
  compare             MODEL:EVALUATION=RESULT.json ...: the results of `--out` side by side (Markdown),
                      with pretrained - random, chance, and mean ± std over seeds
  fingerprint         the benchmark end to end from a checkpoint and a manifest: decode references,
                      transform them into queries, embed (video + audio backbone features, each
                      L2-normalised, concatenated, L2-normalised), then map and recall@1 per transform

Protocol (linear, knn, retrieval): `splits` = one file per official split with split train/test
(UCF101, HMDB51: give the 3 split files, the result is their mean); `folds` = one file whose split is
the fold number (ESC-50: train on 4 folds, test on the 5th, mean over the 5); `auto` infers it.
`avssl eval TASK --help` describes each task with examples.

Examples:
  avssl eval linear ucf_split1.npz ucf_split2.npz ucf_split3.npz --out linear.json --report report/
  avssl eval linear esc50.npz --modality audio --seeds 0,1,2
  avssl eval knn esc50.npz --modality audio --k 20 --weighting majority
  avssl eval retrieval ucf_split1.npz --ks 1,5,10,20,50
  avssl eval retrieval joint.npz --cross-modal --subset test
  avssl eval fingerprint-metric vggsound_fp.npz --candidates-per-query 25
  avssl eval fingerprint --checkpoint run/checkpoints/last.ckpt --data vggsound_test.csv --limit 500
  avssl eval fingerprint --checkpoint random:avts-tiny --data demo.csv --transforms crop,blur,speed
  avssl eval compare pretrained:ucf-linear=p.json random:ucf-linear=r.json --out comparison.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from avssl.cli.evaluate_help import TASKS as TASK_HELP
from avssl.errors import UsageError
from avssl.models.device import DEVICE_HELP

TASKS = ("linear", "knn", "retrieval", "fingerprint-metric", "fingerprint", "compare")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _positive_int_list(text: str) -> list[int]:
    values = _int_list(text)
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1, got {text!r}")
    return values


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _described(task: str) -> dict:
    help_, description = TASK_HELP[task]
    return {"help": help_, "description": description, "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("features", nargs="+", help="features .npz file(s) from `avssl extract`")
    common.add_argument("--modality", choices=("video", "audio"), default=None,
                        help="which array to evaluate (default: video when present, else audio)")
    common.add_argument("--out", help="also write the JSON result to this file")
    common.add_argument("--report", metavar="DIR", help="write DIR/report.md, DIR/result.json and PNG plots")
    common.add_argument("--metrics-csv", help="a run's metrics.csv: its loss curves go into the report")
    common.add_argument("--embedding", choices=("pca", "tsne"), default="pca", help="2-D map in the report")
    common.add_argument("--seed", type=int, default=0, help="seed (CV folds, solver, report sampling)")
    common.add_argument("--seeds", type=_int_list, help="e.g. 0,1,2: run once per seed, report mean and std")
    protocol = argparse.ArgumentParser(add_help=False)
    protocol.add_argument("--protocol", choices=("auto", "splits", "folds"), default="auto",
                          help="splits: one file per split (train/test); folds: fold numbers in split")
    sub = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    p = sub.add_parser("linear", parents=[common, protocol], **_described("linear"))
    p.add_argument("--cs", type=_float_list, default=None, help="candidate C values (default 1e-3..100)")
    p.add_argument("--cv", type=_int_at_least(2), default=5,
                   help="grouped CV folds on the training side, at least 2 (default 5)")
    p = sub.add_parser("knn", parents=[common, protocol], **_described("knn"))
    p.add_argument("--k", type=_int_at_least(1), default=20, help="neighbours (default 20)")
    p.add_argument("--weighting", choices=("weighted", "majority"), default="weighted",
                   help="weighted: exp(cos / temperature) per neighbour (default); majority: 1 each")
    p.add_argument("--temperature", type=float, default=0.07, help="weighted-vote temperature (default 0.07)")
    p = sub.add_parser("retrieval", parents=[common, protocol], **_described("retrieval"))
    p.add_argument("--ks", type=_positive_int_list, default=[1, 5, 10, 20, 50], help="recall cut-offs (each >= 1)")
    p.add_argument("--cross-modal", action="store_true", help="audio <-> video retrieval in each file")
    p.add_argument("--match", choices=("path", "group", "label"), default="path",
                   help="cross-modal hit: the same path (default), any clip of the same group, or of the same label")
    p.add_argument("--subset", help="cross-modal: only rows with this split value (e.g. test)")
    p = sub.add_parser("fingerprint-metric", parents=[common], **_described("fingerprint-metric"))
    p.add_argument("--candidates-per-query", type=int, default=None,
                   help="keep each query's top-k references as candidates (default: all)")
    p = sub.add_parser("fingerprint", **_described("fingerprint"))
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint of `avssl pretrain` or random:CONFIG")
    p.add_argument("--data", required=True, metavar="MANIFEST", help="manifest of the reference files")
    p.add_argument("--transforms", type=lambda t: [v for v in t.split(",") if v.strip()], default=None,
                   help="comma-separated query transforms (default: all of crop, resize, blur, brightness, "
                        "reencode, speed, audio_noise, audio_resample)")
    p.add_argument("--seconds", type=float, default=None,
                   help="reference window in seconds (default: twice the model's clip)")
    p.add_argument("--limit", type=int, default=None, help="use the first N usable files only")
    p.add_argument("--candidates-per-query", type=int, default=None,
                   help="keep each query's top-k references as candidates (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the transforms' randomness")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--out", help="also write the JSON result to this file")
    p = sub.add_parser("compare", **_described("compare"))
    p.add_argument("results", nargs="+", metavar="MODEL:EVALUATION=RESULT.json",
                   help="a result JSON of `avssl eval ... --out`, with the model (column) and evaluation (row) names")
    p.add_argument("--metrics", type=lambda t: [v for v in t.split(",") if v], default=None,
                   help="comma-separated metric keys (default: every top-level number)")
    p.add_argument("--baseline", default="random", metavar="MODEL",
                   help="the model the others are compared with: a column MODEL - BASELINE each (default random)")
    p.add_argument("--out", help="also write the Markdown table to this file")


def evaluate_once(args: argparse.Namespace, feature_sets: list, modality: str, seed: int) -> dict:
    """One evaluation of args.task on the loaded features with `seed`."""
    from avssl.evaluate import fingerprint, knn, linear, protocols, retrieval

    examples = 8 if args.report else 0
    if args.task == "fingerprint-metric":
        if len(feature_sets) != 1:
            raise UsageError("fingerprint-metric takes one features file (references and queries)")
        return fingerprint.fingerprint_metrics_from_features(feature_sets[0], modality, args.candidates_per_query)
    if args.task == "retrieval" and args.cross_modal:
        results = [retrieval.evaluate_cross_modal(f, args.ks, args.match, args.subset, examples) for f in feature_sets]
        out = {k: sum(r[k] for r in results) if k.startswith("n_") else sum(r[k] for r in results) / len(results)
               for k in results[0] if not k.startswith("_")}
        out["runs"] = [{"name": f.source, **{k: v for k, v in r.items() if not k.startswith("_")}}
                       for f, r in zip(feature_sets, results)]
        out["_examples"] = results[0].get("_examples", [])
        return out
    protocol, runs = protocols.build_runs(feature_sets, args.protocol)
    if args.task == "linear":
        result = linear.evaluate_linear(runs, modality, args.cs or linear.DEFAULT_CS, args.cv, seed)
    elif args.task == "knn":
        result = knn.evaluate_knn(runs, modality, args.k, args.weighting, args.temperature)
    else:
        result = retrieval.evaluate_class_retrieval(runs, modality, args.ks, examples)
    return {"protocol": protocol, **result}


def run_fingerprint_task(args: argparse.Namespace) -> int:
    """`avssl eval fingerprint`: the benchmark from a model and a manifest."""
    from avssl.data.manifest import Manifest
    from avssl.evaluate.fingerprint_driver import run_fingerprint
    from avssl.evaluate.model_loading import load_model
    from avssl.evaluate.report import provenance, public, write_json
    from avssl.models.device import resolve_device

    if not os.path.isfile(args.data):
        raise UsageError(f"--data {args.data}: manifest not found")
    try:
        manifest = Manifest.load(args.data)
    except (ValueError, KeyError) as err:
        raise UsageError(f"--data {args.data}: {err}") from None
    args.device = resolve_device(args.device)
    model = load_model(args.checkpoint, args.device)
    result = run_fingerprint(model.method, model.config, manifest, seconds=args.seconds, transforms=args.transforms,
                             seed=args.seed, limit=args.limit, candidates_per_query=args.candidates_per_query,
                             device=args.device)
    result = {"task": "fingerprint", "checkpoint": args.checkpoint, "checkpoint_step": model.step, **result,
              "seed": args.seed}
    config = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("verbose", "verb")}
    result["provenance"] = provenance(config, args.seed, [args.data])
    if args.out:
        write_json(result, args.out)
    json.dump(public(result), sys.stdout)
    sys.stdout.write("\n")
    return 0


def run_compare_task(args: argparse.Namespace) -> int:
    """`avssl eval compare`: a Markdown table of several results, one column per model."""
    from avssl.evaluate.compare import comparison_table, parse_entry

    entries = []
    for item in args.results:
        model, evaluation, path = parse_entry(item)
        if not os.path.isfile(path):
            raise UsageError(f"{path}: result file not found")
        try:
            with open(path, encoding="utf-8") as f:
                result = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UsageError(f"{path}: not a JSON result ({err})") from None
        if not isinstance(result, dict):
            raise UsageError(f"{path}: not a result of `avssl eval ... --out` (a JSON object)")
        entries.append((model, evaluation, result))
    text = "\n".join(comparison_table(entries, args.metrics, args.baseline)) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0


def run(args: argparse.Namespace) -> int:
    from avssl.evaluate.features import default_modality, load_features, require_joint_space
    from avssl.evaluate.protocols import check_one_model
    from avssl.cli.outputs import check_output
    from avssl.evaluate.report import provenance, public, run_seeds, write_json, write_report

    if getattr(args, "out", None):  # before the work: a result is never computed only to be lost
        check_output(args.out, "--out")
    if getattr(args, "report", None):
        check_output(args.report, "--report", folder=True)
    if args.task == "fingerprint":
        return run_fingerprint_task(args)
    if args.task == "compare":
        return run_compare_task(args)
    if args.metrics_csv and not os.path.isfile(args.metrics_csv):
        raise UsageError(f"--metrics-csv {args.metrics_csv}: file not found")
    feature_sets = [load_features(p) for p in args.features]
    if args.task == "retrieval" and args.cross_modal:
        modality = "both"
        for f in feature_sets:
            require_joint_space(f)
    else:
        modality = default_modality(feature_sets[0], args.modality)
        for f in feature_sets[1:]:
            f.matrix(modality)
    warnings = check_one_model(feature_sets, ("video", "audio") if modality == "both" else (modality,))
    seeds = args.seeds or [args.seed]
    if len(seeds) > 1:
        result = run_seeds(lambda s: evaluate_once(args, feature_sets, modality, s), seeds)
    else:
        result = {**evaluate_once(args, feature_sets, modality, seeds[0]), "seed": seeds[0]}
    result = {"task": args.task, "modality": modality, **result}
    result["warnings"] = warnings + list(result.get("warnings", []))
    config = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("verbose", "verb")}
    inputs = list(args.features) + ([args.metrics_csv] if args.metrics_csv else [])
    result["provenance"] = provenance(config, seeds[0] if len(seeds) == 1 else seeds, inputs)
    if args.out:
        write_json(result, args.out)
    if args.report:
        shown = feature_sets[0] if modality in ("video", "audio") else None
        write_report(result, args.report, title=f"avssl eval {args.task}", features=shown,
                     modality=modality if shown is not None else None, metrics_csv=args.metrics_csv,
                     embedding=args.embedding, seed=seeds[0])
    json.dump(public(result), sys.stdout)
    sys.stdout.write("\n")
    return 0

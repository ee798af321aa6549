"""Does each method learn? Pretrained against random initialisation, on videos of real spoken letters.

The spoken-letters world (avssl.bench.letters: Debian's klettres-data recordings of A-Z in about a
dozen voices, each shown as a glyph for the same half second from each time it starts) is rendered
several times per (letter, voice): the methods pretrain on --train-renders renders of each pair
(default 1), unlabeled, and are judged on another render. For each method's CPU-scale config
(`METHOD-tiny`, `--steps` steps) and the same architecture freshly initialised:
- cross-modal retrieval on the test renders in the joint space: audio -> video and back, a hit being
  a clip of the same letter (recall@1, recall@5, median rank of the first hit, both directions
  averaged); the query's own render is a clip of its letter, so beside these (which the targets
  judge, as the issue set them) the result holds recall@5 and the median rank with each query's own
  render left out (letters found in other renders) and the share of queries whose own render comes
  first (matching a render's audio to its video, which needs no letter);
- linear probes of the letter on the video and on the audio backbone features, fitted on the train
  renders and scored on the test renders.
With --seeds S1,S2,... each method pretrains once per seed and each seed has its own random init (the
same config and seed, untrained); the table shows the means over seeds and the targets are judged on
them (one untrained network is a noisy yardstick: its median rank moved from 16.0 to 21.5 between two
seeds on the renders of format 3, docs/benchmarks.md). av-nce, the field's plain baseline, runs beside
the paper methods. Beside them, a supervised reference for the video side: the tiny video encoder (av-nce-tiny's)
trained from scratch with the letter labels on the train renders for --supervised-steps steps and
tested on the test renders (avssl finetune's default recipe, model=video): what the labels teach the
same encoder at this data scale.
The targets (docs/benchmarks.md): median rank at most half of random's, recall@5 at least 1.5x
random's, video probe at least 10 points above random. Where the recordings cannot be had (no apt),
the benchmark says why and stops.

examples:
  avssl bench learn --out learn.json
  avssl bench learn --methods avts,av-nce --steps 600 --supervised-steps 0
  avssl bench learn --methods avts --steps 2000 --train-renders 8 --seeds 0,1
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from avssl.errors import UsageError

log = logging.getLogger(__name__)

METHODS = ("avts", "temporal-av", "movie-nce", "avcl", "av-nce")
TARGETS = {"median_rank": 0.5, "recall@5": 1.5, "video_probe_points": 0.10}
SUPERVISED_CONFIG = "av-nce-tiny"
# the labels' own run: the tiny configs' batch and learning rate, no dropout (docs/benchmarks.md)
SUPERVISED_OVERRIDES = ["model=video", "batch_size=16", "lr=0.002", "dropout=0"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated (default {','.join(METHODS)})")
    parser.add_argument("--steps", type=int, default=600, help="pretraining steps per method (default 600)")
    parser.add_argument("--work", default=".cache/bench-learn", help="folder for the recordings, renders, runs and "
                        "features (kept: a second call reuses the renders and the finished runs)")
    parser.add_argument("--workers", type=int, default=2, help="processes for rendering, loading, extraction")
    parser.add_argument("--supervised-steps", type=int, default=2000,
                        help="steps of the supervised video reference (default 2000; 0 leaves it out)")
    parser.add_argument("--train-renders", type=int, default=1,
                        help="renders of each (letter, voice) pair to pretrain and fit the probes on (default 1)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds: each pretrains once and has its own random init; the "
                        "targets are judged on the means over seeds (default 0)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from avssl.bench.letters import FORMAT_VERSION, LettersUnavailable, build_letters, train_render_indices

    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or args.steps < 1 or args.supervised_steps < 0:
        raise UsageError(f"--methods: unknown {unknown} (known: {', '.join(METHODS)})" if unknown
                         else f"--steps must be positive and --supervised-steps at least 0, got {args.steps} and "
                         f"{args.supervised_steps}")
    train_render_indices(args.train_renders)  # a bad count is named before anything is fetched
    seeds = parse_seeds(args.seeds)
    started = time.perf_counter()
    try:
        letters = build_letters(os.path.join(args.work, "data"), workers=args.workers,
                                train_renders=args.train_renders)
    except LettersUnavailable as err:
        raise UsageError(f"bench learn needs Debian's klettres-data recordings: {err}") from None
    results = {"steps": args.steps, "train_renders": args.train_renders, "seeds": seeds,
               "letters_format": FORMAT_VERSION, "methods": {}}
    for method in methods:
        runs = {}
        for seed in seeds:
            log.info("bench learn: %s, seed %d (%.0f s so far)", method, seed, time.perf_counter() - started)
            runs[seed] = judge_method(method, letters, args, seed)
        results["methods"][method] = over_seeds(runs)
    if args.supervised_steps:
        log.info("bench learn: supervised reference (%.0f s so far)", time.perf_counter() - started)
        results["supervised_video"] = supervised_reference(letters, args)
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_table(results, os.path.join(args.work, "learn.md"))
    return results


def parse_seeds(text: str) -> list[int]:
    """The --seeds list: distinct integers, at least one."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be integers separated by commas, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds must name at least one seed, each once, got {text!r}")
    return seeds


def judge_method(method: str, letters: dict[str, str], args: argparse.Namespace, seed: int = 0) -> dict[str, Any]:
    """Pretrain `method`'s tiny config with `seed` on the train renders, then score it and the random
    init of the same config and seed (`random:RUN/config.yaml`) on the test renders."""
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config
    from avssl.train.engine import pretrain

    # seed 0 (the tiny configs' own) keeps the folder name of earlier versions
    name = f"{method}-{args.steps}{renders_suffix(args)}" + (f"-seed{seed}" if seed else "")
    run_dir = os.path.join(runs_folder(args), name)
    config = load_config(resolve_config_path(f"{method}-tiny"),
                         [f"trainer.max_steps={args.steps}", f"data.num_workers={args.workers}", f"seed={seed}"])
    t0 = time.perf_counter()
    checkpoint = str(pretrain(config, letters["train"], run_dir))
    out: dict[str, Any] = {"train_seconds": round(time.perf_counter() - t0, 1)}
    random_init = f"random:{os.path.join(run_dir, 'config.yaml')}"
    for side, model in (("pretrained", checkpoint), ("random", random_init)):
        out[side] = score_model(model, letters, os.path.join(run_dir, f"features-{side}"), args.workers)
    out["targets"] = targets_met(out["pretrained"], out["random"])
    return out


def over_seeds(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One method's runs by seed -> the mean of each score over the seeds for pretrained and random
    init, the targets judged on those means, the summed training time, and every seed's own result."""
    out: dict[str, Any] = {"train_seconds": round(sum(r["train_seconds"] for r in runs.values()), 1)}
    for side in ("pretrained", "random"):
        keys = next(iter(runs.values()))[side]
        out[side] = {key: float(np.mean([r[side][key] for r in runs.values()])) for key in keys}
    out["targets"] = targets_met(out["pretrained"], out["random"])
    out["by_seed"] = {str(seed): run for seed, run in runs.items()}
    return out


def runs_folder(args: argparse.Namespace) -> str:
    """Where the runs go: one folder per format of the renders, so that a run trained on renders of an
    earlier format is never taken for a finished run on the current ones."""
    from avssl.bench.letters import FORMAT_VERSION

    return os.path.join(args.work, "runs", f"letters-v{FORMAT_VERSION}")


def renders_suffix(args: argparse.Namespace) -> str:
    """The run folders' mark of the training renders ("" for one: the folders of earlier versions)."""
    return "" if args.train_renders == 1 else f"-r{args.train_renders}"


def supervised_reference(letters: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """The video encoder of SUPERVISED_CONFIG trained from scratch with the letter labels on the train
    renders and tested on the test renders (clip-averaged top-1; a finished run is not trained again)."""
    from avssl.data.manifest import Manifest
    from avssl.evaluate.finetune_run import finetune_setup, finetune_splits, train_and_test

    run_dir = os.path.join(runs_folder(args), f"supervised-video-{args.supervised_steps}{renders_suffix(args)}")
    manifest = os.path.join(run_dir, "letters.csv")  # train and test rows, told apart by `split`
    os.makedirs(run_dir, exist_ok=True)
    splits = {split: Manifest.load(letters[split]) for split in ("train", "test")}
    Manifest.from_rows([asdict(row) for part in splits.values() for row in part]).save(manifest)
    checkpoint = f"random:{SUPERVISED_CONFIG}"
    loaded, config, section = finetune_setup(checkpoint, "default", [
        *SUPERVISED_OVERRIDES, f"max_steps={args.supervised_steps}", f"num_workers={args.workers}",
        "trainer.accelerator=cpu", "trainer.devices=1"])
    split = finetune_splits([manifest], config, section)[0]
    t0 = time.perf_counter()
    result = train_and_test(config, section, split, Path(run_dir) / "split1", loaded.method.state_dict(), checkpoint,
                            "cpu")
    return {"config": SUPERVISED_CONFIG, "steps": args.supervised_steps, "overrides": SUPERVISED_OVERRIDES,
            "train_seconds": round(time.perf_counter() - t0, 1), "test_top1": result["top1"],
            "n_test": result["n_test"], "chance": 1 / len(splits["test"].label_index())}


def score_model(checkpoint: str, letters: dict[str, str], folder: str, workers: int) -> dict[str, float]:
    """Cross-modal letter retrieval on the test renders and letter probes from train to test renders."""
    from avssl.evaluate.extract import extract_to_file
    from avssl.evaluate.linear import linear_probe
    from avssl.evaluate.retrieval import evaluate_cross_modal

    os.makedirs(folder, exist_ok=True)
    feats = {f"{split}_{space}": extract_to_file(checkpoint, letters[split], os.path.join(folder, f"{split}_{space}.npz"),
                                                 modality="both", space=space, workers=workers)
             for split in ("train", "test") for space in ("backbone", "embedding")}
    retrieval = evaluate_cross_modal(feats["test_embedding"], ks=(1, 5), match="label")
    # the same features scored twice more: the warning about repeated rows, if any, came once above
    others = evaluate_cross_modal(feats["test_embedding"], ks=(5,), match="label", leave_out_own=True,
                                  warn_repeated=False)
    own = evaluate_cross_modal(feats["test_embedding"], ks=(1,), match="path", warn_repeated=False)
    train, test = feats["train_backbone"], feats["test_backbone"]
    scores = {"median_rank": retrieval["median_rank"], "recall@1": retrieval["recall@1"],
              "recall@5": retrieval["recall@5"], "n_queries": retrieval["n_queries"],
              # the letter hits above include the query's own render (its audio finds its own video):
              # letter retrieval among the other renders, and how often the own render is found first
              "other_renders_recall@5": others["recall@5"], "other_renders_median_rank": others["median_rank"],
              "own_render_recall@1": own["recall@1"]}
    for modality in ("video", "audio"):
        probe = linear_probe(train.matrix(modality), train.label, test.matrix(modality), test.label,
                             groups_train=recording_groups(train.label, train.group))
        scores[f"{modality}_probe_top1"] = probe.top1
    return scores


def recording_groups(letters: np.ndarray, voices: np.ndarray) -> np.ndarray:
    """int [N]: one cross-validation group per recording (letter, voice), numbered in order of
    appearance. The renders of a recording share its speech, so the probe's folds keep them together
    (a fold that split them would reward memorising the recording); with one render per recording
    each file is its own group."""
    first_seen: dict[tuple[str, str], int] = {}
    return np.array([first_seen.setdefault((str(a), str(b)), len(first_seen)) for a, b in zip(letters, voices)],
                    dtype=np.int64)


def targets_met(pretrained: dict[str, float], random: dict[str, float]) -> dict[str, bool]:
    return {
        "median_rank": pretrained["median_rank"] <= TARGETS["median_rank"] * random["median_rank"],
        "recall@5": pretrained["recall@5"] >= TARGETS["recall@5"] * random["recall@5"],
        "video_probe_points": pretrained["video_probe_top1"] >= random["video_probe_top1"] + TARGETS["video_probe_points"],
    }


def pair(pretrained: dict[str, float], random: dict[str, float], key: str) -> str:
    """"p / r" to 3 decimals; "-" for a result written before the key existed."""
    if key not in pretrained or key not in random:
        return "-"
    return f"{pretrained[key]:.3f} / {random[key]:.3f}"


def write_table(results: dict[str, Any], path: str) -> str:
    """The Markdown table of a bench learn result (pretrained / random per metric, targets met)."""
    seeds = results.get("seeds", [0])
    over = f"means over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"seed {seeds[0]}"
    lines = [f"Spoken letters (renders of format {results.get('letters_format', '?')}), {results['steps']} steps "
             f"per method, {results.get('train_renders', 1)} training render(s) per (letter, voice), {over}; "
             "pretrained / random, test renders; targets judged on the means, each seed's own count in brackets.",
             "",
             "| method | median rank | recall@1 | recall@5 | video probe top-1 | audio probe top-1 | targets met "
             "| recall@5, own render left out | own render at rank 1 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method, r in results["methods"].items():
        p, q = r["pretrained"], r["random"]
        met = sum(r["targets"].values())
        per_seed = " (" + ", ".join(str(sum(run["targets"].values())) for run in r["by_seed"].values()) + ")" \
            if len(r.get("by_seed", {})) > 1 else ""
        lines.append(f"| {method} | {p['median_rank']:.1f} / {q['median_rank']:.1f} | {p['recall@1']:.3f} / "
                     f"{q['recall@1']:.3f} | {p['recall@5']:.3f} / {q['recall@5']:.3f} | {p['video_probe_top1']:.3f} / "
                     f"{q['video_probe_top1']:.3f} | {p['audio_probe_top1']:.3f} / {q['audio_probe_top1']:.3f} | "
                     f"{met} of {len(r['targets'])}{per_seed} | {pair(p, q, 'other_renders_recall@5')} | "
                     f"{pair(p, q, 'own_render_recall@1')} |")
    supervised = results.get("supervised_video")
    if supervised:
        lines += ["", f"Supervised reference of the video side ({supervised['config']}'s video encoder trained from "
                  f"scratch with the letter labels, {supervised['steps']} steps): test top-1 "
                  f"{supervised['test_top1']:.3f} (chance {supervised['chance']:.3f})."]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path

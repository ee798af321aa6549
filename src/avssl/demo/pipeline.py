"""The `avssl demo` pipeline: demo world -> manifests -> pretraining -> features -> evaluation -> report.

Each pretrained method is compared with the same architecture freshly initialised (random:CONFIG)
on three evaluations: a video linear probe on the UCF-style splits 1-3 (mean), an audio linear
probe on the ESC-style folds, and cross-modal retrieval (audio <-> video of the same clip) in the
joint embedding space over all UCF-style clips. AVTS and temporal-av also get their own pretext
judged on the UCF-style clips, which no method pretrains on: in-sync vs out-of-sync accuracy
(avssl.evaluate.sync), and direction and order accuracy of the heads (avssl.evaluate.pretext).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from avssl.demo.report import SUMMARY_ROWS, write_demo_report
from avssl.errors import UsageError

log = logging.getLogger(__name__)

METHODS = ("avts", "avcl", "movie-nce", "temporal-av", "av-nce")


@dataclass(frozen=True)
class DemoPlan:
    """How much work a demo does: world scale, training steps, clips per file at extraction."""

    scale: str
    steps: int
    ucf_clips: int
    esc_clips: int


# The tiny world has 5 unlabeled files, fewer than one batch: --quick trains on the default world too
QUICK = DemoPlan(scale="default", steps=300, ucf_clips=2, esc_clips=3)
FULL = DemoPlan(scale="default", steps=600, ucf_clips=3, esc_clips=5)

# (evaluation, metric) rows of the report's table; the first of each evaluation is its headline metric.
# An evaluation a method does not get (avts_sync for all but avts) has no rows.
HEADLINE = {
    "ucf_video_linear": ("top1", "top5"),
    "esc_audio_linear": ("top1", "top5"),
    # the median rank, not recall@1: recall@1 counts a handful of hits, the median rank uses every
    # query's rank
    "cross_modal_retrieval": ("median_rank", "recall@1", "recall@5", "a2v_median_rank", "v2a_median_rank"),
    "avts_sync": ("all", "easy", "hard"),
    "temporal_pretext": ("mean", "video_direction", "audio_direction", "video_order", "audio_order", "av_order"),
}
SYNC_METHODS = ("avts",)  # methods trained to tell in-sync from shifted audio
PRETEXT_METHODS = ("temporal-av",)  # methods with direction and order heads (avssl.evaluate.pretext)
SYNC_WINDOWS_PER_FILE = 2
UCF_SPLITS = (1, 2, 3)  # the video probe is the mean over the three official-style splits
TIE_TOLERANCE = 1e-9
LOWER_IS_BETTER = {"median_rank", "a2v_median_rank", "v2a_median_rank"}


def _stage(name: str, started: float) -> None:
    log.info("demo: %s (%.0f s so far)", name, time.perf_counter() - started)


def build_manifests(world_dir: str, out_dir: str, workers: int) -> dict[str, str]:
    """Probe the world's unlabeled clips+movies, UCF-style split 1 and ESC-style set; returns their paths."""
    from avssl.data.adapters import get_adapter
    from avssl.data.discovery import discover_media
    from avssl.data.probing import build_manifest, probe_paths

    out = {}
    for name, dataset, split in (("pretrain", None, None), ("ucf1", "ucf101", 1), ("esc", "esc50", None)):
        path = os.path.join(out_dir, f"{name}.csv")
        out[name] = path
        if os.path.isfile(path):
            continue
        if dataset is None:
            paths = discover_media([os.path.join(world_dir, "clips"), os.path.join(world_dir, "movies")])
            labels = {}
        else:
            root = os.path.join(world_dir, "ucf" if dataset == "ucf101" else "esc")
            entries = get_adapter(dataset)(root, split, class_list=None, name_template=None)
            paths, labels = [e.path for e in entries], {e.path: (e.label, e.split, e.group) for e in entries}
        rows = probe_paths(paths, workers=workers, progress=False)
        manifest = build_manifest(paths, rows, labels)
        manifest.save(path + ".tmp.csv")
        os.replace(path + ".tmp.csv", path)
        log.info("demo: %s: %d files", path, len(manifest))
    return out


def extract(checkpoint: str, manifest_path: str, out_path: str, modality: str, clips: int, space: str,
            workers: int):
    """Features of a manifest with `checkpoint` (a last.ckpt or random:CONFIG), saved and returned."""
    from avssl.evaluate.extract import extract_to_file

    return extract_to_file(checkpoint, manifest_path, out_path, modality=modality, clips_per_video=clips,
                           space=space, workers=workers)


def sync_eval_pairs(manifest_path: str, config_name: str):
    """The in-sync / out-of-sync windows of every file of the manifest (none was pretrained on), at
    the config's clip."""
    from avssl.config.bundled import resolve_config_path
    from avssl.data.manifest import Manifest
    from avssl.evaluate.sync import sync_pairs
    from avssl.methods.configs import load_config

    manifest = Manifest.load(manifest_path)
    return sync_pairs(list(manifest.strings("path")), manifest.column("duration"),
                      load_config(resolve_config_path(config_name)), windows_per_file=SYNC_WINDOWS_PER_FILE)


def manifest_table(manifest_path: str):
    """The FileTable of a manifest's usable files (for the pretext evaluation)."""
    from avssl.data.dataset import usable_table
    from avssl.data.manifest import Manifest

    return usable_table(Manifest.load(manifest_path))[0]


def ucf_split_features(features, world_dir: str) -> list:
    """`features` (UCF-style clips) once per split of UCF_SPLITS, the split column from that split's lists."""
    import dataclasses

    from avssl.data.adapters import get_adapter

    out = []
    for k in UCF_SPLITS:
        entries = get_adapter("ucf101")(os.path.join(world_dir, "ucf"), k, class_list=None, name_template=None)
        split_of = {e.path: e.split for e in entries}
        split = np.array([split_of.get(str(p), "") for p in features.path])
        out.append(dataclasses.replace(features, split=split, source=f"{features.source} (split {k})"))
    return out


def evaluate_model(checkpoint: str, manifests: dict[str, str], world_dir: str, feat_dir: str, plan: DemoPlan,
                   workers: int, sync_pairs=None, pretext_table=None) -> dict[str, dict]:
    """The evaluations of one model (avts_sync when `sync_pairs` are given, temporal_pretext when
    `pretext_table` is); every value a plain number."""
    from avssl.evaluate import linear, protocols, retrieval
    from avssl.evaluate.model_loading import load_model
    from avssl.evaluate.pretext import pretext_accuracy
    from avssl.evaluate.sync import sync_accuracy

    os.makedirs(feat_dir, exist_ok=True)
    ucf = extract(checkpoint, manifests["ucf1"], os.path.join(feat_dir, "ucf1.npz"), "both", plan.ucf_clips,
                  "backbone", workers)
    joint = extract(checkpoint, manifests["ucf1"], os.path.join(feat_dir, "ucf1_joint.npz"), "both",
                    plan.ucf_clips, "embedding", workers)
    esc = extract(checkpoint, manifests["esc"], os.path.join(feat_dir, "esc.npz"), "audio", plan.esc_clips,
                  "backbone", workers)
    results = {}
    _, runs = protocols.build_runs(ucf_split_features(ucf, world_dir), "splits")
    results["ucf_video_linear"] = linear.evaluate_linear(runs, "video")
    _, runs = protocols.build_runs([esc], "folds")
    results["esc_audio_linear"] = linear.evaluate_linear(runs, "audio")
    results["ucf_video_linear"]["n_classes"] = len(np.unique(ucf.label))
    results["esc_audio_linear"]["n_classes"] = len(np.unique(esc.label))
    results["cross_modal_retrieval"] = retrieval.evaluate_cross_modal(joint, ks=(1, 5, 10))
    if sync_pairs is not None:
        results["avts_sync"] = sync_accuracy(load_model(checkpoint, "cpu").method, sync_pairs)
    if pretext_table is not None:
        results["temporal_pretext"] = pretext_accuracy(load_model(checkpoint, "cpu").method, pretext_table)
    return {name: {k: float(v) for k, v in r.items() if isinstance(v, (int, float, np.number))}
            for name, r in results.items()}


def chance_level(evaluation: str, metric: str, values: dict) -> float:
    """What guessing scores: 1/C (top-k: k/C), k/N for recall@k and (N + 1)/2 for the median rank
    over a gallery of N, 0.5 for a sync decision."""
    if evaluation == "avts_sync":
        return 0.5
    if evaluation == "temporal_pretext":
        return values[f"chance_{metric}"]
    if metric.startswith("top"):
        c = values["n_classes"]
        return min(int(metric[3:]), c) / c
    n = values["n_queries"]
    if metric.endswith("median_rank"):
        return (n + 1) / 2
    return min(int(metric.split("@")[1]), n) / n


def compare(pretrained: dict[str, dict], random: dict[str, dict]) -> list[dict]:
    """One row per (evaluation, metric) of HEADLINE: both values, chance, and whether pretrained is better."""
    rows = []
    for evaluation, metrics in HEADLINE.items():
        if evaluation not in pretrained:
            continue
        for metric in metrics:
            p, r = pretrained[evaluation][metric], random[evaluation][metric]
            # a tie is not better: means over splits of equal accuracies can differ in the last bit
            margin = TIE_TOLERANCE * max(1.0, abs(p), abs(r))
            better = p < r - margin if metric in LOWER_IS_BETTER else p > r + margin
            rows.append({"evaluation": evaluation, "metric": metric, "pretrained": p, "random": r,
                         "chance": chance_level(evaluation, metric, pretrained[evaluation]),
                         "pretrained_better": bool(better), "headline": metric == metrics[0]})
    return rows


def run_demo(out_dir: str, methods: list[str], plan: DemoPlan, workers: int = 2, seed: int = 0) -> dict:
    """The whole demo into out_dir; returns the results (also written to out_dir/results.json)."""
    from avssl.config.bundled import resolve_config_path
    from avssl.data.synthetic import generate_world, preset
    from avssl.methods.configs import load_config
    from avssl.methods.registry import method_class
    from avssl.train.engine import pretrain

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"--method: unknown method(s) {unknown}; choose from {', '.join(METHODS)} or all")
    started = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    world_dir = os.path.join(out_dir, "world")
    _stage(f"demo world ({plan.scale}) into {world_dir}", started)
    generate_world(world_dir, preset(plan.scale, seed=seed), scale=plan.scale, workers=workers, progress=False)
    _stage("probing", started)
    manifests = build_manifests(world_dir, out_dir, workers)
    results: dict = {"scale": plan.scale, "steps": plan.steps, "seed": seed, "methods": {}}
    for method in methods:
        config_name = f"{method}-tiny"
        run_dir = os.path.join(out_dir, "runs", method)
        _stage(f"pretraining {config_name} for {plan.steps} steps into {run_dir}", started)
        config = load_config(resolve_config_path(config_name), [f"trainer.max_steps={plan.steps}",
                                                                f"data.num_workers={workers}"])
        t0 = time.perf_counter()
        checkpoint = str(pretrain(config, manifests["pretrain"], run_dir))
        train_s = time.perf_counter() - t0
        own = {"sync_pairs": sync_eval_pairs(manifests["ucf1"], config_name) if method in SYNC_METHODS else None,
               "pretext_table": manifest_table(manifests["ucf1"]) if method in PRETEXT_METHODS else None}
        _stage(f"{method}: features and evaluation of the pretrained model", started)
        pre = evaluate_model(checkpoint, manifests, world_dir, os.path.join(out_dir, "features", method), plan,
                             workers, **own)
        _stage(f"{method}: features and evaluation of random:{config_name}", started)
        rnd = evaluate_model(f"random:{config_name}", manifests, world_dir,
                             os.path.join(out_dir, "features", f"{method}-random"), plan, workers, **own)
        results["methods"][method] = {"config": config_name, "checkpoint": checkpoint,
                                      "train_seconds": round(train_s, 1), "pretrained": pre, "random": rnd,
                                      "comparison": compare(pre, rnd),
                                      "loss_terms": loss_term_columns(method),
                                      "chance": method_class(method).chance_levels(config),
                                      "loss": _loss_summary(os.path.join(run_dir, "metrics.csv"),
                                                            loss_term_columns(method))}
    results["seconds"] = round(time.perf_counter() - started, 1)
    _stage("writing the report", started)
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, allow_nan=True)
        f.write("\n")
    write_demo_report(results, out_dir)
    _stage(f"done: {os.path.join(out_dir, 'report.md')}", started)
    return results


def loss_term_columns(method: str) -> tuple[str, ...]:
    """The metrics.csv columns of a method's loss terms (train/<term>)."""
    from avssl.methods.registry import method_class

    return tuple(f"train/{term}" for term in method_class(method).loss_terms)


def _loss_summary(metrics_csv: str, terms: tuple[str, ...]) -> dict:
    """{column: {"start", "end"}}: the mean of the first and of the last SUMMARY_ROWS logged values
    of the loss and of each term (one logged value is one batch: noisy)."""
    from avssl.evaluate.plots import read_loss_columns

    curves = read_loss_columns(metrics_csv, terms) if os.path.isfile(metrics_csv) else {}
    return {name: {"start": float(np.mean(values[:SUMMARY_ROWS])), "end": float(np.mean(values[-SUMMARY_ROWS:]))}
            for name, (_, values) in curves.items() if len(values)}

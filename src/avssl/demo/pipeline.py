"""The `avssl demo` pipeline: demo world -> manifests -> pretraining -> features -> evaluation -> report.

Each pretrained method is compared with the same architecture freshly initialised (random:CONFIG)
on three evaluations: a video linear probe on the UCF-style splits 1-3 (mean), an audio linear
probe on the ESC-style folds, and cross-modal retrieval (audio <-> video of the same clip) in the
joint embedding space over all UCF-style clips. AVTS and temporal-av also get their own pretext
judged on the UCF-style clips, which no method pretrains on: in-sync vs out-of-sync accuracy
(avssl.evaluate.sync), and direction and order accuracy of the heads (avssl.evaluate.pretext).
Pretraining runs the online probe on the UCF-style clips (kNN top-1 every steps/10 steps: the
learning curve of the report).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from avssl.demo.comparison import compare
from avssl.demo.provenance import demo_provenance, method_provenance
from avssl.demo.report import SUMMARY_ROWS, write_demo_report
from avssl.errors import UsageError

log = logging.getLogger(__name__)

METHODS = ("avts", "avcl", "movie-nce", "temporal-av", "av-nce")


@dataclass(frozen=True)
class DemoPlan:
    """How much work a demo does: world scale, training steps (None: each method's tiny config's own
    `trainer.max_steps`, what it needs at CPU scale), clips per file at extraction."""

    scale: str
    steps: int | None
    ucf_clips: int
    esc_clips: int


# The tiny world has 5 unlabeled files, fewer than one batch: --quick trains on the default world too
QUICK = DemoPlan(scale="default", steps=300, ucf_clips=2, esc_clips=3)
FULL = DemoPlan(scale="default", steps=None, ucf_clips=3, esc_clips=5)

SYNC_METHODS = ("avts",)  # methods trained to tell in-sync from shifted audio
PRETEXT_METHODS = ("temporal-av",)  # methods with direction and order heads (avssl.evaluate.pretext)
SYNC_WINDOWS_PER_FILE = 2
UCF_SPLITS = (1, 2, 3)  # the video probe is the mean over the three official-style splits


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
            workers: int, overrides: list[str] | tuple[str, ...] = ()):
    """Features of a manifest with `checkpoint` (a last.ckpt or random:CONFIG with config `overrides`),
    saved and returned."""
    from avssl.evaluate.extract import extract_to_file

    return extract_to_file(checkpoint, manifest_path, out_path, modality=modality, clips_per_video=clips,
                           space=space, workers=workers, overrides=overrides)


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
                   workers: int, sync_pairs=None, pretext_table=None, overrides: list[str] | tuple[str, ...] = ()
                   ) -> dict[str, dict]:
    """The evaluations of one model (avts_sync when `sync_pairs` are given, temporal_pretext when
    `pretext_table` is); every value a plain number, counts as ints. `overrides`: config keys of a
    random:CONFIG model (its seed)."""
    from avssl.evaluate import linear, protocols, retrieval
    from avssl.evaluate.model_loading import load_model
    from avssl.evaluate.pretext import pretext_accuracy
    from avssl.evaluate.sync import sync_accuracy

    os.makedirs(feat_dir, exist_ok=True)
    ucf = extract(checkpoint, manifests["ucf1"], os.path.join(feat_dir, "ucf1.npz"), "both", plan.ucf_clips,
                  "backbone", workers, overrides)
    joint = extract(checkpoint, manifests["ucf1"], os.path.join(feat_dir, "ucf1_joint.npz"), "both",
                    plan.ucf_clips, "embedding", workers, overrides)
    esc = extract(checkpoint, manifests["esc"], os.path.join(feat_dir, "esc.npz"), "audio", plan.esc_clips,
                  "backbone", workers, overrides)
    results = {}
    _, runs = protocols.build_runs(ucf_split_features(ucf, world_dir), "splits")
    results["ucf_video_linear"] = linear.evaluate_linear(runs, "video")
    _, runs = protocols.build_runs([esc], "folds")
    results["esc_audio_linear"] = linear.evaluate_linear(runs, "audio")
    results["ucf_video_linear"]["n_classes"] = len(np.unique(ucf.label))
    results["esc_audio_linear"]["n_classes"] = len(np.unique(esc.label))
    results["cross_modal_retrieval"] = retrieval.evaluate_cross_modal(joint, ks=(1, 5, 10))
    if sync_pairs is not None:
        results["avts_sync"] = sync_accuracy(load_model(checkpoint, "cpu", overrides).method, sync_pairs)
    if pretext_table is not None:
        results["temporal_pretext"] = pretext_accuracy(load_model(checkpoint, "cpu", overrides).method, pretext_table)
    return {name: {k: _plain(v) for k, v in r.items() if isinstance(v, (int, float, np.number))}
            for name, r in results.items()}


def _plain(value):
    """A count stays an int in results.json (12, not 12.0); every other number is a float."""
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def run_demo(out_dir: str, methods: list[str], plan: DemoPlan, workers: int = 2, seed: int = 0,
             seeds: int = 1) -> dict:
    """The whole demo into out_dir; returns the results (also written to out_dir/results.json).
    `seeds` > 1: pretraining and evaluation once per training seed 0..seeds-1 (config key `seed`, which
    also seeds the random initialisation), each method's entry the mean and spread over them."""
    from avssl.data.synthetic import generate_world, preset
    from avssl.demo.seeds import aggregate_method

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"--method: unknown method(s) {unknown}; choose from {', '.join(METHODS)} or all")
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}")
    started = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    world_dir = os.path.join(out_dir, "world")
    _stage(f"demo world ({plan.scale}) into {world_dir}", started)
    generate_world(world_dir, preset(plan.scale, seed=seed), scale=plan.scale, workers=workers, progress=False)
    _stage("probing", started)
    manifests = build_manifests(world_dir, out_dir, workers)
    results: dict = {"scale": plan.scale, "steps": plan.steps, "seed": seed, "methods": {}}
    if seeds > 1:
        results["seeds"] = list(range(seeds))
    for method in methods:
        if seeds == 1:
            results["methods"][method] = run_method(method, method, None, out_dir, plan, manifests, workers, started)
            continue
        per_seed = [run_method(method, f"{method}-seed{s}", s, out_dir, plan, manifests, workers, started)
                    for s in range(seeds)]
        results["methods"][method] = aggregate_method(per_seed, list(range(seeds)))
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["provenance"] = demo_provenance(results, manifests, plan, workers)
    _stage("writing the report", started)
    with open(os.path.join(out_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, allow_nan=True)
        f.write("\n")
    write_demo_report(results, out_dir)
    _stage(f"done: {os.path.join(out_dir, 'report.md')}", started)
    return results


def method_steps(plan: DemoPlan, config_name: str) -> int:
    """The pretraining steps of `config_name` in this demo: the plan's, or the config's own."""
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config

    return plan.steps or load_config(resolve_config_path(config_name)).trainer.max_steps


def run_method(method: str, name: str, train_seed: int | None, out_dir: str, plan: DemoPlan,
               manifests: dict[str, str], workers: int, started: float) -> dict:
    """Pretrain METHOD-tiny into out_dir/runs/NAME (config seed `train_seed` when given), evaluate it
    and random:METHOD-tiny (the same seed), and return the method's entry of results.json."""
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config
    from avssl.methods.registry import method_class
    from avssl.train.engine import pretrain

    config_name = f"{method}-tiny"
    overrides = [] if train_seed is None else [f"seed={train_seed}"]
    run_dir, world_dir = os.path.join(out_dir, "runs", name), os.path.join(out_dir, "world")
    steps = method_steps(plan, config_name)
    _stage(f"pretraining {config_name} {' '.join(overrides)} for {steps} steps into {run_dir}", started)
    # the online probe (kNN top-1 on the UCF-style clips, logged as probe/knn_top1): the learning curve
    probe = [f"probe.manifest={os.path.abspath(manifests['ucf1'])}", f"probe.every_n_steps={max(1, steps // 10)}"]
    config = load_config(resolve_config_path(config_name), [f"trainer.max_steps={steps}",
                                                            f"data.num_workers={workers}", *probe, *overrides])
    t0 = time.perf_counter()
    checkpoint = str(pretrain(config, manifests["pretrain"], run_dir))
    train_s = time.perf_counter() - t0
    own = {"sync_pairs": sync_eval_pairs(manifests["ucf1"], config_name) if method in SYNC_METHODS else None,
           "pretext_table": manifest_table(manifests["ucf1"]) if method in PRETEXT_METHODS else None}
    features = {side: os.path.join(out_dir, "features", name if side == "pretrained" else f"{name}-random")
                for side in ("pretrained", "random")}
    _stage(f"{name}: features and evaluation of the pretrained model", started)
    pre = evaluate_model(checkpoint, manifests, world_dir, features["pretrained"], plan, workers, **own)
    random_spec = f"random:{config_name}"
    _stage(f"{name}: features and evaluation of {random_spec} {' '.join(overrides)}", started)
    rnd = evaluate_model(random_spec, manifests, world_dir, features["random"], plan, workers,
                         overrides=overrides, **own)
    return {"config": config_name, "steps": steps, "checkpoint": checkpoint, "train_seconds": round(train_s, 1),
            "pretrained": pre, "random": rnd, "comparison": compare(pre, rnd),
            "loss_terms": loss_term_columns(method),
            "chance": {**method_class(method).chance_levels(config),
                       "probe/knn_top1": 1 / pre["ucf_video_linear"]["n_classes"]},
            "loss": _loss_summary(os.path.join(run_dir, "metrics.csv"), loss_term_columns(method)),
            "provenance": method_provenance(config, checkpoint, features, train_seed)}


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

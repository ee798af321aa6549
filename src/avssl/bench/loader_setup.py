"""The loader benchmark's inputs: its data sets (generated on first use), the tiny recipe configs at
the benchmark's clip size, the engine's own loader built from them, and its endless batch stream."""

from __future__ import annotations

import argparse
import os
from typing import Any

from avssl.errors import UsageError

DATASETS = ("demo", "720p", "30min")
RECIPES = ("temporal-av", "avts")


def dataset_paths(name: str, cache_dir: str, repeat: int) -> list[str]:
    """The media paths of data set `name` (generated under cache_dir on first use)."""
    from avssl.bench.decode import generate

    if name == "demo":
        from avssl.data.synthetic import generate_world, preset

        root = os.path.join(cache_dir, "demo-default")
        world = generate_world(root, preset("default", seed=0), scale="default", progress=False)
        return [os.path.join(root, r["path"]) for r in world["files"] if r["kind"] == "clip"]
    file_name = {"720p": "1280x720_10s", "30min": "320x240_30min"}[name]
    path, _ = generate(cache_dir, file_name)
    return [path] * repeat


def make_table(paths: list[str]) -> Any:
    """FileTable of `paths` (each distinct file probed once)."""
    from avssl.data.dataset import usable_table
    from avssl.data.probing import build_manifest, probe_paths

    unique = list(dict.fromkeys(paths))
    rows = dict(zip(unique, probe_paths(unique, workers=0, progress=False)))
    table, left_out = usable_table(build_manifest(paths, [rows[p] for p in paths]))
    if left_out:
        raise UsageError(f"{left_out} of the bench files do not decode with audio and video")
    return table


def make_config(recipe: str, args: argparse.Namespace, workers: int, cache_dir: str | None = None) -> Any:
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config

    overrides = [f"data.clip.frames={args.frames}", f"data.video_augment.size={args.size}",
                 f"data.batch_size={args.batch}", f"data.num_workers={workers}", "data.persistent_workers=true",
                 f"seed={args.seed}"]
    if cache_dir:
        overrides.append(f"data.cache_dir={cache_dir}")
    return load_config(resolve_config_path(f"{recipe}-tiny"), overrides)


def make_loader(recipe: str, table: Any, args: argparse.Namespace, workers: int, cache_dir: str | None = None) -> Any:
    from avssl.methods.registry import method_class
    from avssl.train.data import build_loader

    config = make_config(recipe, args, workers, cache_dir)
    method = method_class(config.method.name)(config)
    return build_loader(method, table, config, rank=0, world_size=1)


def batches(loader: Any):
    """The loader's batches, epoch after epoch (workers persist across epochs, as in training)."""
    while True:
        yield from loader
        loader.keyed.set_epoch(loader.keyed.epoch + 1)

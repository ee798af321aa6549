"""Loader throughput: training samples/s through the real dataset + DataLoader beside the decode floor.

For each data set (--data) and recipe (--recipes: temporal-av, avts; their tiny configs with clips of
--frames x --size x --size, default 16x112x112, batch --batch) the engine's own loader
(avssl.train.data.build_loader) is timed with 0, 1 and 2 workers (--workers). The run with 0 workers
records every window the recipe reads (file, start, duration, fps, size / rate); the decode floor
replays exactly those windows with a bare MediaReader (one open per sample, no crop, flip, label or
collate), in as many processes as the loader has workers (at least 1). `overhead_pct` is
pipeline ms/sample over floor ms/sample, minus 1: the goal is under 15 at 2 workers. Each figure is
the fastest of --repeats runs (pipeline and floor alternate), which other load disturbs least.

--with-cache also builds the audio and frames caches of each data set (avssl.data.cache) and times
the loader reading them. --memory runs one loader (first data set and recipe, --memory-workers)
for --samples samples and reports the resident memory (RSS) of the main process and its workers.

Data sets, generated on first use under --cache-dir: `demo` (the default demo world's 60 clips,
128x96, 10 s), `720p` (a 10 s 1280x720 file) and `30min` (a 30-minute 320x240 file); the single
files are listed --repeat times so that a batch has distinct rows (the same file, other windows).
The load average is recorded: figures from a busy machine are not comparable with idle ones.

Example:
  avssl bench loader --data demo --batches 12
  avssl bench loader --data demo 720p 30min --with-cache --out bench_loader.json
  avssl bench loader --data demo --recipes avts --memory --samples 5000
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

import torch

from avssl.bench.loader_floor import RecordingOpener, floor_ms_per_sample, read_stats
from avssl.bench.loader_memory import memory_run
from avssl.bench.loader_setup import (
    DATASETS,
    RECIPES,
    batches,
    dataset_paths,
    make_config,
    make_loader,
    make_table,
)
from avssl.errors import UsageError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ timing the loader
def time_pipeline(loader: Any, count: int) -> dict[str, Any]:
    """ms per sample over `count` batches after one untimed warm-up batch (worker start-up)."""
    stream = batches(loader)
    next(stream)
    samples = 0
    started = time.perf_counter()
    for _ in range(count):
        samples += len(next(stream)["key_index"])
    elapsed = time.perf_counter() - started
    del stream
    return {"ms_per_sample": round(1000 * elapsed / samples, 2), "samples_per_s": round(samples / elapsed, 2),
            "samples": samples}


def recorded_run(loader: Any, count: int) -> tuple[dict[str, Any], RecordingOpener]:
    """time_pipeline with 0 workers, recording what the dataset opens and reads."""
    dataset = loader.dataset.dataset
    recorder = RecordingOpener(dataset.open_reader)
    dataset.open_reader = recorder
    return time_pipeline(loader, count), recorder


def bench_recipe(recipe: str, table: Any, args: argparse.Namespace, clip_cache: str | None) -> dict[str, Any]:
    """Pipeline and floor figures of one recipe. Each is measured --repeats times, pipeline and floor
    alternating, and the fastest run is kept: on a shared machine the load of other processes only
    ever slows a run down, so the minimum is the figure least disturbed by it."""
    if 0 not in args.workers:
        raise UsageError("--workers must include 0: that run records the windows the floor replays")
    out: dict[str, Any] = {"pipeline": {}, "floor": {}, "overhead_pct": {}}
    samples: list[tuple[str, list[tuple]]] = []
    for attempt in range(args.repeats):
        for workers in args.workers:
            loader = make_loader(recipe, table, args, workers)
            if workers == 0:
                figures, recorder = recorded_run(loader, args.batches)
                # the warm-up batch is not timed in the loader: leave it out of the floor too
                samples = [(path, windows) for path, windows, _ in recorder.opens[args.batch:]]
                out["reads"] = read_stats(recorder, args.batch)
            else:
                figures = time_pipeline(loader, args.batches)
            del loader
            _keep_fastest(out["pipeline"], str(workers), figures)
        for processes in sorted({max(1, w) for w in args.workers}):
            _keep_fastest(out["floor"], str(processes), {"ms_per_sample": round(floor_ms_per_sample(samples, processes), 2)})
    for workers in args.workers:
        floor = out["floor"][str(max(1, workers))]["ms_per_sample"]
        out["overhead_pct"][str(workers)] = round(100 * (out["pipeline"][str(workers)]["ms_per_sample"] / floor - 1), 1)
    if clip_cache:
        out["cached"] = bench_cached(recipe, table, args, clip_cache)
        for workers, figures in out["cached"]["pipeline"].items():
            floor = out["floor"][str(max(1, int(workers)))]["ms_per_sample"]
            figures["speedup_vs_floor"] = round(floor / figures["ms_per_sample"], 2)
    return out


def _keep_fastest(table: dict[str, Any], key: str, figures: dict[str, Any]) -> None:
    runs = table.get(key, {}).get("runs_ms", []) + [figures["ms_per_sample"]]
    if key not in table or figures["ms_per_sample"] < table[key]["ms_per_sample"]:
        table[key] = dict(figures)
    table[key]["runs_ms"] = runs


def bench_cached(recipe: str, table: Any, args: argparse.Namespace, clip_cache: str) -> dict[str, Any]:
    """Build this recipe's caches (timed), then time the loader that reads them."""
    from avssl.data.cache import AudioCacheSpec, FramesCacheSpec, build_cache
    from avssl.data.clip_io import decode_short_side

    data = make_config(recipe, args, 0).data
    paths = [str(p) for p in dict.fromkeys(table.paths[i] for i in range(len(table)))]
    out: dict[str, Any] = {"build_s": {}, "pipeline": {}}
    for spec in (AudioCacheSpec(data.clip.sample_rate),
                 FramesCacheSpec(data.clip.fps, decode_short_side(data.video_augment.size))):
        started = time.perf_counter()
        summary = build_cache(paths, clip_cache, spec, workers=2)
        if summary["failed"]:
            raise RuntimeError(f"cache build failed: {summary['failed']}")
        out["build_s"][spec.kind] = round(time.perf_counter() - started, 1) if summary["written"] else "cached"
    for attempt in range(args.repeats):
        for workers in args.workers:
            loader = make_loader(recipe, table, args, workers, clip_cache)
            if workers == 0:
                figures, recorder = recorded_run(loader, args.batches)
                out["reads"] = read_stats(recorder, args.batch)
            else:
                figures = time_pipeline(loader, args.batches)
            del loader
            _keep_fastest(out["pipeline"], str(workers), figures)
    return out


# ------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=".cache/bench-media", help="where generated media and caches are kept")
    parser.add_argument("--data", nargs="+", default=["demo"], choices=DATASETS)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2], help="loader workers to time (must include 0)")
    parser.add_argument("--batches", type=int, default=12, help="timed batches per run (after one warm-up batch)")
    parser.add_argument("--batch", type=int, default=8, help="batch size")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement; the fastest is reported")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (data.clip.frames)")
    parser.add_argument("--size", type=int, default=112, help="crop size (data.video_augment.size)")
    parser.add_argument("--repeat", type=int, default=32, help="rows listing each single-file data set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-cache", action="store_true", help="also build and time the audio and frames caches")
    parser.add_argument("--memory", action="store_true", help="measure resident memory over --samples samples instead")
    parser.add_argument("--samples", type=int, default=5000, help="samples of the --memory run")
    parser.add_argument("--memory-workers", type=int, default=2, help="loader workers of the --memory run")


def run(args: argparse.Namespace) -> dict:
    if min(args.batches, args.batch, args.samples, args.repeat, args.repeats) < 1 or min(args.workers) < 0:
        raise UsageError("--batches, --batch, --samples, --repeat and --repeats must be at least 1, --workers at least 0")
    result: dict[str, Any] = {
        "benchmark": "loader",
        "clip": f"{args.frames}x{args.size}x{args.size}, batch {args.batch}",
        "floor": "the recorded windows read by a bare MediaReader (decode, resize to the decode size, "
                 "audio resample), one open per sample, in max(1, workers) processes",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "results": {},
    }
    for name in args.data:
        table = make_table(dataset_paths(name, args.cache_dir, args.repeat))
        clip_cache = os.path.join(args.cache_dir, f"clip-cache-{name}") if args.with_cache else None
        if args.memory:
            if clip_cache:
                bench_cached(args.recipes[0], table, argparse.Namespace(**{**vars(args), "workers": []}), clip_cache)
            result["memory"] = memory_run(args.recipes[0], table, args, clip_cache)
            result["memory"]["data"] = name
            break
        for recipe in args.recipes:
            log.info("timing %s on %s", recipe, name)
            result["results"][f"{name}/{recipe}"] = bench_recipe(recipe, table, args, clip_cache)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result

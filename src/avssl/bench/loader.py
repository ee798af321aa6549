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
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from avssl.errors import UsageError

log = logging.getLogger(__name__)

DATASETS = ("demo", "720p", "30min")
RECIPES = ("temporal-av", "avts")
MB = 1 << 20


# ------------------------------------------------------------------ data sets and configs
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
    from avssl.data.probing import build_manifest, probe_paths
    from avssl.train.data import usable_table

    unique = list(dict.fromkeys(paths))
    rows = dict(zip(unique, probe_paths(unique, workers=0, progress=False)))
    table, left_out = usable_table(build_manifest(paths, [rows[p] for p in paths]))
    if left_out:
        raise UsageError(f"{left_out} of the bench files do not decode with audio and video")
    return table


def make_config(recipe: str, args: argparse.Namespace, workers: int, cache_dir: str | None = None) -> Any:
    from avssl.config.bundled import resolve_config_path
    from avssl.config.schema import load_config

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


# ------------------------------------------------------------------ recording the windows read
class RecordingReader:
    """Passes reads to `inner` and appends each window to `windows` (kind, start, duration, rate, size);
    on close, stores the reader's counters in `stats` and lets the reader go (a reader kept alive
    keeps its decoder's frame buffers: tens of MB at 720p)."""

    def __init__(self, inner: Any, windows: list[tuple], stats: dict[str, Any]) -> None:
        self.inner, self.windows, self.stats = inner, windows, stats
        self.path = inner.path

    @property
    def info(self) -> Any:
        return self.inner.info

    def read_video(self, start: float, duration: float, fps: float | None = None, size: Any = None, **kw: Any) -> Any:
        self.windows.append(("video", float(start), float(duration), fps, size))
        return self.inner.read_video(start, duration, fps=fps, size=size, **kw)

    def read_audio(self, start: float, duration: float, sample_rate: int = 16000, **kw: Any) -> Any:
        self.windows.append(("audio", float(start), float(duration), sample_rate, None))
        return self.inner.read_audio(start, duration, sample_rate=sample_rate, **kw)

    def close(self) -> None:
        if self.inner is None:
            return
        self.stats["decoded_video_frames"] = getattr(self.inner, "decoded_video_frames", None)
        if hasattr(self.inner, "served"):
            self.stats["served"] = dict(self.inner.served)
        self.inner.close()
        self.inner = None


class RecordingOpener:
    """Wraps a dataset's opener: every open is one (path, windows, stats) entry of `opens`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.opens: list[tuple[str, list[tuple], dict[str, Any]]] = []

    def __call__(self, path: str) -> RecordingReader:
        windows: list[tuple] = []
        stats: dict[str, Any] = {}
        self.opens.append((path, windows, stats))
        return RecordingReader(self.inner(path), windows, stats)


def replay(samples: list[tuple[str, list[tuple]]]) -> float:
    """Seconds to read the recorded windows with a bare MediaReader: the decode floor."""
    from avssl.media import MediaReader

    torch.set_num_threads(1)  # as the loader's workers
    started = time.perf_counter()
    for path, windows in samples:
        with MediaReader(path) as reader:
            for kind, start, duration, rate, size in windows:
                if kind == "video":
                    reader.read_video(start, duration, fps=rate, size=size)
                else:
                    reader.read_audio(start, duration, sample_rate=rate)
    return time.perf_counter() - started


def _ready(_: int) -> int:
    torch.set_num_threads(1)
    return os.getpid()


def floor_ms_per_sample(samples: list[tuple[str, list[tuple]]], processes: int) -> float:
    """Wall ms per sample replaying `samples` split over `processes` processes (started beforehand)."""
    if processes <= 1:
        replay(samples[:2])  # warm up imports and decoders as the loader's warm-up batch does
        return 1000 * replay(samples) / len(samples)
    shards = [samples[i::processes] for i in range(processes)]
    # spawn, as a forked child of a threaded parent can hang; started (and warmed up) before timing
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_ready, range(processes)))
        started = time.perf_counter()
        list(pool.map(replay, shards))
        return 1000 * (time.perf_counter() - started) / len(samples)


# ------------------------------------------------------------------ timing the loader
def batches(loader: Any):
    """The loader's batches, epoch after epoch (workers persist across epochs, as in training)."""
    while True:
        yield from loader
        loader.keyed.set_epoch(loader.keyed.epoch + 1)


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


def read_stats(recorder: RecordingOpener, warmup_samples: int) -> dict[str, Any]:
    """Opens per sample, reads per sample, and decoded vs returned video frames (the reader's counts)."""
    opens = recorder.opens[warmup_samples:]
    decoded = [st.get("decoded_video_frames") for _, _, st in opens]
    returned = sum(round(w[2] * w[3]) for _, ws, _ in opens for w in ws if w[0] == "video")
    stats: dict[str, Any] = {
        "opens": len(opens),
        "video_reads_per_open": round(sum(w[0] == "video" for _, ws, _ in opens for w in ws) / len(opens), 2),
        "audio_reads_per_open": round(sum(w[0] == "audio" for _, ws, _ in opens for w in ws) / len(opens), 2),
    }
    if all(d is not None for d in decoded):
        stats["video_frames_decoded_per_returned"] = round(sum(decoded) / max(returned, 1), 2)
    served = [st.get("served") for _, _, st in opens]
    if any(s is not None for s in served):
        stats["served"] = {k: sum(s[k] for s in served if s) for k in next(s for s in served if s)}
    return stats


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


# ------------------------------------------------------------------ resident memory
def rss_mb(pid: int) -> float:
    """Resident set size of process `pid` in MB (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0
    return psutil.Process(pid).memory_info().rss / MB


def child_pids(pid: int) -> list[int]:
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue  # the thread ended while listing
    return sorted(set(out))


def memory_run(recipe: str, table: Any, args: argparse.Namespace, clip_cache: str | None) -> dict[str, Any]:
    """RSS of the main process and each worker while the loader yields args.samples samples.

    The baseline is taken after the first 10% of samples (workers started, decoders and allocator
    warmed up); growth after it is what a long run accumulates."""
    others = set(child_pids(os.getpid()))  # e.g. multiprocessing's resource tracker: not the loader's
    loader = make_loader(recipe, table, args, args.memory_workers, clip_cache)
    stream = batches(loader)
    seen, trace, baseline = 0, [], None
    started = time.perf_counter()
    while seen < args.samples:
        seen += len(next(stream)["key_index"])
        pids = [os.getpid(), *(p for p in child_pids(os.getpid()) if p not in others)]
        point = {"samples": seen, "main_mb": round(rss_mb(pids[0]), 1),
                 "workers_mb": [round(rss_mb(p), 1) for p in pids[1:]]}
        point["total_mb"] = round(point["main_mb"] + sum(point["workers_mb"]), 1)
        if baseline is None and seen >= args.samples // 10:
            baseline = point
        trace.append(point)
    elapsed = time.perf_counter() - started
    del stream, loader
    last = trace[-1]
    half = next(p for p in trace if p["samples"] >= seen // 2)
    every = max(1, len(trace) // 20)
    return {
        "recipe": recipe, "workers": args.memory_workers, "samples": seen, "seconds": round(elapsed, 1),
        "cached": bool(clip_cache),
        "baseline": baseline, "end": last,
        "growth_mb_total": round(last["total_mb"] - baseline["total_mb"], 1),
        "growth_mb_main": round(last["main_mb"] - baseline["main_mb"], 1),
        "growth_mb_second_half": round(last["total_mb"] - half["total_mb"], 1),
        "peak_total_mb": max(p["total_mb"] for p in trace),
        "trace": trace[::every],
        "rss_source": "psutil" if _has_psutil() else "/proc/PID/status VmRSS",
    }


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


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

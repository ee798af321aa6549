"""Resident memory (RSS) of the loader benchmark's main process and its DataLoader workers over a long run."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from avssl.bench.loader_setup import batches, make_loader

MB = 1 << 20


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

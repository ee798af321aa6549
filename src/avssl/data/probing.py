"""Probing many files in parallel: a pool of worker processes with a per-file timeout.

concurrent.futures cannot stop a task that hangs, so each worker is a process of our own that gets
one path at a time: a worker that runs past the timeout is killed and replaced, a worker that dies
is replaced, and in both cases the file gets a row with its reason while the others go on.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from tqdm import tqdm

from avssl.data.file_checks import failed_row, probe_file
from avssl.data.manifest import Manifest

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
_STARTUP_TIMEOUT_S = 120.0  # importing the media layer in a fresh worker; not counted against a file


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _media_probe(path: str):
    from avssl.media import probe

    return probe(path)


def probe_paths(
    paths: Sequence[str],
    workers: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
    probe: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """Probe each path; return one manifest row (dict) per path, in the order given.

    workers: processes (default: CPU count, at most 8); 0 probes in this process, where no timeout
        can be enforced. timeout: seconds per file before its worker is killed.
    probe: the function that reads a file's MediaInfo (default avssl.media.probe); it must be
        importable by name so that worker processes can receive it.
    """
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    probe = probe or _media_probe
    workers = default_workers() if workers is None else workers
    bar = tqdm(total=len(paths), desc="probe", unit="file", disable=None if progress else True)
    try:
        if workers == 0 or len(paths) == 0:
            rows = []
            for path in paths:
                rows.append(probe_file(path, probe))
                bar.update(1)
            return rows
        return _Pool(min(workers, len(paths)), timeout, probe, bar).run(list(paths))
    finally:
        bar.close()


def build_manifest(paths: Sequence[str], rows: Sequence[dict[str, Any]],
                   labels: dict[str, tuple[str, str, str]] | None = None) -> Manifest:
    """Manifest from probe rows; `labels` maps path -> (label, split, group) from an adapter."""
    labels = labels or {}
    merged = []
    for path, row in zip(paths, rows):
        label, split, group = labels.get(path, ("", "", ""))
        merged.append({**row, "label": label, "split": split, "group": group})
    return Manifest.from_rows(merged)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    started: float = 0.0
    task: tuple[int, str] | None = None


class _Pool:
    """Hands one path at a time to each worker; kills and replaces workers that hang or die."""

    def __init__(self, size: int, timeout: float, probe: Callable[[str], Any], bar: tqdm):
        self.size, self.timeout, self.probe, self.bar = size, timeout, probe, bar
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        self.ctx = multiprocessing.get_context(method)
        if method == "forkserver":  # workers fork from a server that already imported the media layer
            self.ctx.set_forkserver_preload(["avssl.media"])
        self.rows: dict[int, dict[str, Any]] = {}

    def run(self, paths: list[str]) -> list[dict[str, Any]]:
        pending = deque(enumerate(paths))
        workers = [self._start() for _ in range(self.size)]
        try:
            while len(self.rows) < len(paths):
                for worker in workers:
                    if worker.ready and worker.task is None and pending:
                        worker.task = pending.popleft()
                        worker.started = time.monotonic()
                        worker.conn.send(worker.task)
                ready = wait([w.conn for w in workers], timeout=self._next_deadline(workers))
                for i, worker in enumerate(workers):
                    if worker.conn in ready:
                        workers[i] = self._receive(worker)
                    elif self._overdue(worker):
                        workers[i] = self._replace(worker, "timeout", f"after {self.timeout:g} s")
            return [self.rows[i] for i in range(len(paths))]
        finally:
            for worker in workers:
                self._stop(worker)

    def _start(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(target=_worker_main, args=(child, self.probe), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent, started=time.monotonic())

    def _next_deadline(self, workers: list[_Worker]) -> float:
        now = time.monotonic()
        limits = [w.started + (self.timeout if w.task else _STARTUP_TIMEOUT_S) - now
                  for w in workers if w.task or not w.ready]
        return max(0.0, min(limits)) if limits else 1.0

    def _overdue(self, worker: _Worker) -> bool:
        limit = self.timeout if worker.task else _STARTUP_TIMEOUT_S
        return (worker.task is not None or not worker.ready) and time.monotonic() - worker.started > limit

    def _receive(self, worker: _Worker) -> _Worker:
        try:
            message = worker.conn.recv()
        except (EOFError, ConnectionResetError):
            worker.process.join(timeout=5)
            return self._replace(worker, "worker crashed", f"exit code {worker.process.exitcode}")
        if message[0] == "ready":
            worker.ready = True
        elif message[0] == "fatal":
            raise RuntimeError(f"probe worker could not start: {message[1]}")
        else:
            index, row = message
            self.rows[index] = row
            worker.task = None
            self.bar.update(1)
        return worker

    def _replace(self, worker: _Worker, kind: str, detail: str) -> _Worker:
        if worker.task is None:
            raise RuntimeError(f"probe worker failed while starting ({kind} {detail})")
        index, path = worker.task
        log.warning("%s: %s %s; the worker was replaced", path, kind, detail)
        self.rows[index] = failed_row(path, kind, detail)
        self.bar.update(1)
        self._stop(worker)
        return self._start()

    @staticmethod
    def _stop(worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()


def _worker_main(conn: Connection, probe: Callable[[str], Any]) -> None:
    try:
        import avssl.media  # noqa: F401  (imported once per worker, before the first file's clock starts)
    except ImportError as err:
        conn.send(("fatal", f"cannot import avssl.media: {err}"))
        return
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent went away
            return
        index, path = task
        conn.send((index, probe_file(path, probe)))


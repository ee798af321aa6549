"""Progress of a long evaluation loop (extraction, fingerprinting): a tqdm bar when stderr is a
terminal, otherwise an INFO log line at most every LOG_EVERY_S seconds and one at the end, so that a
job whose output goes to a log file also shows that it is moving and how far it got."""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

log = logging.getLogger(__name__)

LOG_EVERY_S = 30.0
T = TypeVar("T")


def on_terminal() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def progress(items: Iterable[T], total: int | None, desc: str, unit: str = "file",
             every_s: float = LOG_EVERY_S) -> Iterator[T]:
    """Yield `items`, showing how many of `total` went by (a bar on a terminal, log lines otherwise)."""
    if on_terminal():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit=unit)
        return
    started = last = time.perf_counter()
    done = 0
    of = f"/{total}" if total is not None else ""
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every_s:
            last = now
            log.info("%s: %d%s %ss (%.0f s)", desc, done, of, unit, now - started)
    log.info("%s: %d%s %ss done in %.1f s", desc, done, of, unit, time.perf_counter() - started)

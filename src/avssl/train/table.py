"""The training table of a run: the manifest's usable rows for the method's recipe, and the rows left out
(listed in RUN_DIR/bad_files.csv before training starts)."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np

from avssl.data.dataset import FileTable, usable_table
from avssl.data.manifest import Manifest
from avssl.errors import UsageError

log = logging.getLogger(__name__)


class BadManifestRowsError(RuntimeError):
    """Under --strict: the manifest lists files that `avssl probe` found unusable (names them)."""


def load_table(manifest_path: str | os.PathLike, bad_files: Optional[Path] = None, strict: bool = False,
               min_duration: float = 0.0, streams: str = "both") -> FileTable:
    """The usable rows (no error, the `streams` the recipe needs, at least `min_duration` s) of a
    manifest as a FileTable.

    Rows with a probe error, and files shorter than `min_duration` (the method's clip window), are
    listed in `bad_files` (path, reason, step left empty: before training); under `strict` they stop
    the run (BadManifestRowsError). A listed file that no longer exists is a UsageError naming it:
    the manifest is out of date (re-run `avssl probe`).
    """
    if not Path(manifest_path).is_file():
        raise UsageError(f"manifest not found: {manifest_path}")
    try:
        manifest = Manifest.load(manifest_path)
    except (ValueError, KeyError) as err:
        raise UsageError(f"manifest {manifest_path}: {err}") from None
    errors, paths = manifest.strings("error"), manifest.strings("path")
    durations = np.asarray(manifest.column("duration"), dtype=np.float64)
    short = (errors == "") & manifest.usable_mask(streams) & (durations < min_duration)
    bad = [(str(paths[i]), str(errors[i])) for i in np.flatnonzero(errors != "")]
    bad += [(str(paths[i]), f"too short: {durations[i]:.3f} s, the method's clip window needs {min_duration:.3f} s")
            for i in np.flatnonzero(short)]
    if short.any():
        manifest = manifest.take(np.flatnonzero(~short))
    if bad and strict:
        shown = "; ".join(f"{p}: {r}" for p, r in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise BadManifestRowsError(f"manifest {manifest_path} lists {len(bad)} unusable file(s) "
                                   f"(strict mode stops on bad files): {shown}")
    if bad_files is not None:
        _write_bad_rows(bad_files, bad)
    total = len(manifest) + int(short.sum())
    table, left_out = usable_table(manifest, streams)
    left_out += int(short.sum())
    if left_out:
        log.info("%s: %d of %d rows left out: %d with a probe error or too short (listed in %s), "
                 "%d without %s", manifest_path, left_out, total, len(bad),
                 bad_files or "the manifest", left_out - len(bad), "video or audio" if streams == "both" else streams)
    if len(table) == 0:
        raise UsageError(f"manifest {manifest_path} has no usable row (needs {streams} streams, no error)")
    missing = [p for p in (table.paths[i] for i in range(len(table))) if not os.path.exists(p)]
    if missing:
        raise UsageError(f"manifest {manifest_path}: {len(missing)} of {len(table)} usable files do not exist "
                         f"(first: {missing[0]}); the manifest is out of date: run `avssl probe` again "
                         "(it records missing files as 'file not found' rows, which training skips)")
    return table


def _write_bad_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    """bad_files.csv at the start of a fresh run: the manifest's unusable rows, step empty. A file
    left by an attempt that died before its first checkpoint is replaced (those steps run again)."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason", "step"])
        writer.writerows([p, reason, ""] for p, reason in rows)
    os.replace(tmp, path)

"""The training table of a run: the manifest's usable rows for the method's recipe, and the rows left out
(listed in RUN_DIR/bad_files.csv before training starts)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

from avssl.data.dataset import FileTable, usable_table
from avssl.data.manifest import Manifest
from avssl.errors import UsageError
from avssl.train.bad_files import write_bad_rows

log = logging.getLogger(__name__)


class BadManifestRowsError(RuntimeError):
    """Under --strict: the manifest lists files that `avssl probe` found unusable (names them)."""


def load_table(manifest_path: str | os.PathLike, requirements: FileRequirements, bad_files: Optional[Path] = None,
               strict: bool = False) -> FileTable:
    """The usable rows of a manifest for a recipe as a FileTable: no probe error, the streams it needs,
    long enough, and a video frame rate it can use (`requirements`, from the recipe class).

    Rows with a probe error and files the recipe cannot use are listed in `bad_files` (path, reason,
    step left empty: before training); under `strict` they stop the run (BadManifestRowsError). A
    listed file that no longer exists is a UsageError naming it: the manifest is out of date (re-run
    `avssl probe`).
    """
    if not Path(manifest_path).is_file():
        raise UsageError(f"manifest not found: {manifest_path}")
    try:
        manifest = Manifest.load(manifest_path)
    except (ValueError, KeyError) as err:
        raise UsageError(f"manifest {manifest_path}: {err}") from None
    errors, paths = manifest.strings("error"), manifest.strings("path")
    unfit = unfit_rows(manifest, requirements)
    bad = [(str(paths[i]), str(errors[i])) for i in np.flatnonzero(errors != "")] + list(unfit.values())
    if unfit:
        manifest = manifest.take(np.setdiff1d(np.arange(len(manifest)), list(unfit)))
    if bad and strict:
        shown = "; ".join(f"{p}: {r}" for p, r in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise BadManifestRowsError(f"manifest {manifest_path} lists {len(bad)} unusable file(s) "
                                   f"(strict mode stops on bad files): {shown}")
    if bad_files is not None:
        _write_bad_rows(bad_files, bad)
    streams = requirements.streams
    table, left_out = usable_table(manifest, streams)
    if left_out + len(unfit):
        log.info("%s: %d of %d rows left out: %d with a probe error or unfit for the method (listed in %s), "
                 "%d without %s", manifest_path, left_out + len(unfit), len(manifest) + len(unfit), len(bad),
                 bad_files or "the manifest", left_out + len(unfit) - len(bad),
                 "video or audio" if streams == "both" else streams)
    if len(table) == 0:
        raise UsageError(f"manifest {manifest_path} has no usable row (needs {streams} streams, no error)")
    missing = [p for p in (table.paths[i] for i in range(len(table))) if not os.path.exists(p)]
    if missing:
        raise UsageError(f"manifest {manifest_path}: {len(missing)} of {len(table)} usable files do not exist "
                         f"(first: {missing[0]}); the manifest is out of date: run `avssl probe` again "
                         "(it records missing files as 'file not found' rows, which training skips)")
    return table


class FileRequirements(NamedTuple):
    """What a recipe needs of a file: its streams ("both" or "video"), seconds, video frames per second."""

    streams: str = "both"
    min_duration: float = 0.0
    min_video_fps: Optional[float] = None


def file_requirements(recipe_class: type, config: Any) -> FileRequirements:
    """What the recipe class needs of a file under `config`."""
    return FileRequirements(recipe_class.streams, recipe_class.min_file_duration(config),
                            recipe_class.min_video_fps(config))


def unfit_rows(manifest: Manifest, requirements: FileRequirements) -> dict[int, tuple[str, str]]:
    """Row -> (path, reason) for the rows that decode and hold the streams but that the recipe cannot use."""
    errors, paths = manifest.strings("error"), manifest.strings("path")
    candidates = (errors == "") & manifest.usable_mask(requirements.streams)
    durations = np.asarray(manifest.column("duration"), dtype=np.float64)
    fps = np.asarray(manifest.column("video_fps"), dtype=np.float64)
    out = {}
    for i in np.flatnonzero(candidates & (durations < requirements.min_duration)):
        out[int(i)] = (str(paths[i]), f"too short: {durations[i]:.3f} s, the method's clip window needs "
                                      f"{requirements.min_duration:.3f} s")
    if requirements.min_video_fps is not None:
        low = candidates & (fps < requirements.min_video_fps - 1e-6)
        for i in np.flatnonzero(low):
            out.setdefault(int(i), (str(paths[i]), f"video at {fps[i]:.3f} fps, below the {requirements.min_video_fps:.3f} "
                                                   "fps the method's clips need: frames would repeat"))
    return out


def _write_bad_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    """bad_files.csv at the start of a fresh run: the manifest's unusable rows, step and epoch empty. A
    file left by an attempt that died before its first checkpoint is replaced (those steps run again)."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    write_bad_rows(path, ([p, reason, "", ""] for p, reason in rows))

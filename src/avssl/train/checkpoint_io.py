"""Checkpoints that survive a crash: atomic writes (temp file, fsync, rename), the previous one kept,
safe loading (`weights_only=True`) and a fallback when the newest one is truncated or corrupt."""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from avssl.train.checkpoint_format import safe_load

log = logging.getLogger(__name__)

LAST = "last.ckpt"
PREVIOUS = "last.prev.ckpt"

# what a truncated or overwritten checkpoint raises from torch.load
_LOAD_ERRORS = (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError)


class CheckpointError(RuntimeError):
    """No loadable checkpoint: every candidate is truncated, corrupt or unreadable (names the files)."""


def atomic_torch_save(obj: Any, path: str | os.PathLike, keep_previous: bool = True) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`.

    With `keep_previous` the file already at `path` becomes `<stem>.prev<suffix>` first, so a reader
    always finds either the new file complete or the previous one (a crash between the two renames
    leaves only the previous one, which `resolve_resume_checkpoint` falls back to).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def previous_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(PREVIOUS) if path.name == LAST else path.with_name(f"{path.stem}.prev{path.suffix}")


def _fsync_dir(folder: Path) -> None:
    # the rename is durable only once the directory entry is on disk
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(checkpoint_dir: str | os.PathLike) -> None:
    """Delete the temp files of checkpoint writes that a killed process left behind (never complete)."""
    for tmp in Path(checkpoint_dir).glob(f".{LAST}.*.tmp"):
        try:
            tmp.unlink()
            log.info("removed %s: an unfinished checkpoint write of a killed run", tmp)
        except FileNotFoundError:
            pass  # another rank removed it


def check_checkpoint(path: str | os.PathLike) -> Optional[str]:
    """None when `path` loads (safely), else the reason it does not."""
    try:
        checkpoint = safe_load(path, mmap=True)
    except pickle.UnpicklingError as err:
        if zipfile.is_zipfile(path) and "weights_only" in str(err):
            # a whole file that holds pickled objects: loading it could run code, so it is refused
            first = str(err).splitlines()[0]
            return f"refused: it holds objects other than tensors and plain values ({first})"
        return f"UnpicklingError: {str(err).splitlines()[0] if str(err) else 'unreadable'}"
    except _LOAD_ERRORS as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'unreadable'}"
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        return "not a training checkpoint (no state_dict)"
    return None


def resolve_resume_checkpoint(checkpoint_dir: str | os.PathLike) -> Optional[Path]:
    """The checkpoint to resume from: last.ckpt, or last.prev.ckpt when last.ckpt is missing, truncated
    or corrupt (logged with the reason); None when the folder holds neither (a fresh run).

    Raises CheckpointError when checkpoints exist but none loads.
    """
    folder = Path(checkpoint_dir)
    reasons = []
    for candidate in (folder / LAST, folder / PREVIOUS):
        if not candidate.exists():
            continue
        reason = check_checkpoint(candidate)
        if reason is None:
            if reasons:
                log.warning("%s; resuming from the previous checkpoint %s", "; ".join(reasons), candidate)
            return candidate
        reasons.append(f"checkpoint {candidate} is truncated or corrupt ({reason})")
    if reasons:
        raise CheckpointError("; ".join(reasons) + ". Delete the checkpoints folder to start over.")
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO: atomic writes keeping the previous file, weights-only loading."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = None, weights_only: Optional[bool] = None) -> dict[str, Any]:
        if not os.path.exists(path):
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        return safe_load(path, map_location=map_location or "cpu")

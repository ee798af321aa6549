"""`avssl embed`: per-window (or per-file pooled) embeddings of many media files with one model.

Inputs: files as given, folders walked for media files (avssl.data.discovery), and manifests of
`avssl probe` (.csv / .parquet: their `path` column). Each file is embedded window by window
(avssl.evaluate.windows: memory flat on long files); `pool="mean"` keeps one row per file, the mean
of its window vectors (not re-normalised), spanning its first window's start to its last window's
end. A file that cannot be opened or decoded, or lacks a stream the modality needs, is skipped and
listed in the result's `failures`; with `strict` the first one stops the run (EmbedStopped).
Progress: a bar of windows on a terminal, and a log line per file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avssl.errors import UsageError
from avssl.evaluate.embed_io import MODALITY_COLUMNS, EmbeddingTable
from avssl.evaluate.windows import FileWindows, embed_windows, plan_windows
from avssl.media import MediaError, MediaReader

log = logging.getLogger(__name__)

POOLS = ("none", "mean")
MANIFEST_SUFFIXES = (".csv", ".parquet")


class EmbedStopped(RuntimeError):
    """A file failed under `strict` (the message names it)."""


def collect_inputs(paths: list[str]) -> list[str]:
    """The media files `paths` name, in order, each once: files as given, folders walked, the
    `path` column of manifests (.csv / .parquet). UsageError naming a path that does not exist."""
    from avssl.data.discovery import discover_media
    from avssl.data.manifest import Manifest

    found: list[str] = []
    for given in paths:
        if os.path.isfile(given) and given.lower().endswith(MANIFEST_SUFFIXES):
            try:
                found.extend(str(p) for p in Manifest.load(given).strings("path"))
            except (ValueError, KeyError) as err:
                raise UsageError(f"{given}: not a manifest of `avssl probe` ({err})") from None
        else:
            found.extend(discover_media([given]))
    return list(dict.fromkeys(found))


@dataclass
class EmbedRun:
    """What a run gave: its rows, the files embedded and the files that failed (path, reason)."""

    table: EmbeddingTable
    embedded: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def pooled(windows: FileWindows) -> FileWindows:
    """One row: the mean of the file's window vectors, from its first start to its last end."""
    mean = {m: None if getattr(windows, m) is None else getattr(windows, m).mean(axis=0, keepdims=True)
            for m in MODALITY_COLUMNS}
    return FileWindows(windows.path, windows.starts[:1], windows.ends[-1:], mean["video"], mean["audio"])


def _progress_bar(enabled: bool) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on a terminal only; log files get the per-file lines instead
    return tqdm(total=0, unit="window", desc="embed", disable=None if enabled else True)


def _table(parts: list[FileWindows], modality: str) -> EmbeddingTable:
    def stack(name: str) -> np.ndarray | None:
        if modality not in (name, "both"):
            return None
        return np.concatenate([getattr(p, name) for p in parts]).astype(np.float32) if parts else None

    return EmbeddingTable(
        path=np.asarray([p.path for p in parts for _ in range(len(p.starts))], dtype=str),
        start=np.concatenate([p.starts for p in parts]) if parts else np.zeros(0),
        end=np.concatenate([p.ends for p in parts]) if parts else np.zeros(0),
        video=stack("video"), audio=stack("audio"))


def embed_paths(model: Any, paths: list[str], *, modality: str = "video", space: str = "backbone",
                window: float | None = None, stride: float | None = None, pool: str = "none", batch: int = 16,
                strict: bool = False, progress: bool = True) -> EmbedRun:
    """Embeddings of `paths` (media files) with `model` (avssl.evaluate.pretrained.PretrainedModel)."""
    if pool not in POOLS:
        raise UsageError(f"--pool must be one of {POOLS}, got {pool!r}")
    if batch < 1:
        raise UsageError(f"--batch must be >= 1, got {batch}")
    plan = plan_windows(model.config, modality, window, stride)
    fns = {name: fn if modality in (name, "both") else None for name, fn in model.functions(space).items()}
    run, parts = EmbedRun(EmbeddingTable(np.zeros(0, str), np.zeros(0), np.zeros(0))), []
    bar = _progress_bar(progress)
    try:
        for number, path in enumerate(paths, 1):
            try:
                with torch.no_grad(), MediaReader(path, backend=model.config.data.backend) as reader:
                    bar.total += len(plan.starts(reader.info.duration))
                    bar.set_postfix_str(os.path.basename(path), refresh=True)
                    windows = embed_windows(reader, plan, model.config, fns, batch=batch, device=model.device,
                                            on_chunk=bar.update)
            except MediaError as err:
                reason = err.reason or str(err)
                run.failures.append({"path": path, "reason": reason})
                log.warning("skipping %s: %s", path, reason)
                if strict:
                    raise EmbedStopped(f"{path}: {reason} (--strict stops on the first bad file)") from None
                continue
            parts.append(pooled(windows) if pool == "mean" else windows)
            run.embedded.append(path)
            log.info("embedded %s: %d windows (file %d of %d)", path, len(windows.starts), number, len(paths))
    finally:
        bar.close()
    run.table = _table(parts, modality)
    return run


def run_metadata(model: Any, *, modality: str, space: str, pool: str, window: float | None,
                 stride: float | None) -> dict[str, Any]:
    """What an embeddings file records about how it was made (avssl.evaluate.embed_io.METADATA)."""
    import json

    import avssl
    from avssl.config.schema import config_to_dict

    plan = plan_windows(model.config, modality, window, stride)
    return {"space": space, "modality": modality, "pool": pool, "window": plan.window, "stride": plan.stride,
            "model": model.source, "method": model.config.method.name, "checkpoint_sha256": model.sha256,
            "step": model.step, "random_init": model.random_init,
            "config": json.dumps(config_to_dict(model.config)), "avssl_version": avssl.__version__}

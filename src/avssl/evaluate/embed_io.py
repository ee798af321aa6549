"""Embeddings files, as `avssl embed` writes them: Parquet or .npz (chosen by the suffix).

Rows: `path` (str), `start` and `end` (float64 seconds: the window [start, end), or the span of a
pooled file), `video` and/or `audio` (float32 [D] per row). With them, what made them (METADATA):
`space` (backbone | joint), `modality`, `pool` (none | mean), `window` and `stride` (seconds),
`model` (what was loaded), `method`, `checkpoint_sha256` ('' for random init), `step`,
`random_init`, `config` (the run config as a JSON string) and `avssl_version`. In .npz every
metadata value is a 0-d array of its own name (strings as unicode, so the file loads with
allow_pickle=False); in Parquet each is a key of the schema metadata (a JSON value).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avssl.errors import UsageError

MODALITY_COLUMNS = ("video", "audio")
METADATA = ("space", "modality", "pool", "window", "stride", "model", "method", "checkpoint_sha256", "step",
            "random_init", "config", "avssl_version")
SUFFIXES = (".parquet", ".npz")


@dataclass
class EmbeddingTable:
    """Rows of embeddings: path [N] str, start / end [N] float64, video / audio float32 [N, D] or None."""

    path: np.ndarray
    start: np.ndarray
    end: np.ndarray
    video: np.ndarray | None = None
    audio: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.path)


def check_suffix(path: str) -> str:
    """'.parquet' or '.npz' from the name; UsageError naming --out otherwise."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"--out {path}: the name must end in .parquet or .npz (the format is chosen by it)")
    return suffix


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("writing Parquet needs the `pyarrow` package: pip install 'avssl[parquet]' "
                         "(or write .npz)") from None
    return pa, pq


def save_embeddings(path: str, table: EmbeddingTable) -> str:
    """Write `table` to `path` (.parquet or .npz) through a temporary file; returns the path."""
    suffix = check_suffix(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{suffix}"
    if suffix == ".npz":
        arrays = {"path": table.path.astype(str), "start": table.start, "end": table.end}
        arrays.update({m: getattr(table, m) for m in MODALITY_COLUMNS if getattr(table, m) is not None})
        arrays.update({f"meta_{k}": np.asarray(json.dumps(table.metadata.get(k))) for k in METADATA})
        np.savez(tmp, **arrays)
    else:
        pa, pq = _pyarrow()
        columns = {"path": pa.array(table.path.astype(str).tolist(), pa.string()),
                   "start": pa.array(table.start, pa.float64()), "end": pa.array(table.end, pa.float64())}
        for m in MODALITY_COLUMNS:
            value = getattr(table, m)
            if value is not None:
                flat = pa.array(np.ascontiguousarray(value, dtype=np.float32).reshape(-1), pa.float32())
                columns[m] = pa.FixedSizeListArray.from_arrays(flat, value.shape[1])
        meta = {k.encode(): json.dumps(table.metadata.get(k)).encode() for k in METADATA}
        pq.write_table(pa.table(columns).replace_schema_metadata(meta), tmp)
    os.replace(tmp, path)
    return path


def load_embeddings(path: str) -> EmbeddingTable:
    """An embeddings file written by save_embeddings; UsageError naming it when it is not one."""
    suffix = check_suffix(path)
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such embeddings file")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            meta = {k: json.loads(str(data[f"meta_{k}"])) for k in METADATA if f"meta_{k}" in data}
            mods = {m: data[m] for m in MODALITY_COLUMNS if m in data}
            return EmbeddingTable(data["path"], data["start"], data["end"], metadata=meta, **mods)
    _, pq = _pyarrow()
    table = pq.read_table(path)
    raw = table.schema.metadata or {}
    meta = {k: json.loads(raw[k.encode()]) for k in METADATA if k.encode() in raw}
    mods = {}
    for m in MODALITY_COLUMNS:
        if m in table.column_names:
            column = table.column(m).combine_chunks()
            mods[m] = column.values.to_numpy().reshape(len(table), column.type.list_size)
    return EmbeddingTable(np.asarray(table.column("path").to_pylist(), dtype=str),
                          table.column("start").to_numpy(), table.column("end").to_numpy(), metadata=meta, **mods)

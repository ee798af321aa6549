"""The manifest: one row per media file (what `avssl probe` found), stored column-wise in numpy arrays.

Columns are those of DESIGN.md. Strings live in `PackedStrings` (one byte blob + offsets) and numbers
in typed numpy arrays, so a Manifest held by DataLoader workers is a handful of objects, not one per
row. The columns are avssl.data.manifest_schema's; reading and writing them (CSV, Parquet) is
avssl.data.manifest_io's.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avssl.data import manifest_io
from avssl.data.manifest_schema import COLUMNS, MODALITIES
from avssl.data.packed_strings import PackedStrings


@dataclass(frozen=True)
class ManifestRow:
    """One file of a manifest, as plain Python values (made on access, never stored)."""

    path: str
    duration: float
    has_video: bool
    has_audio: bool
    video_fps: float
    width: int
    height: int
    num_frames: int
    audio_sample_rate: int
    audio_channels: int
    label: str
    split: str
    group: str
    error: str


@dataclass(frozen=True)
class HealthSummary:
    """What a manifest holds: counts over all files, hours over the readable ones."""

    files: int
    readable: int
    hours: float
    with_audio: int
    without_audio: int
    with_video: int
    unreadable: int
    reasons: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        lines = [
            f"files: {self.files}  readable: {self.readable}  hours: {self.hours:.2f}  "
            f"with audio: {self.with_audio}  without audio: {self.without_audio}  "
            f"with video: {self.with_video}  unreadable: {self.unreadable}"
        ]
        if self.reasons:
            lines.append("unreadable by reason:")
            width = max(len(r) for r in self.reasons)
            lines += [f"  {reason:<{width}}  {count}" for reason, count in self.reasons.items()]
        return "\n".join(lines)


def reason_kind(error: str) -> str:
    """The kind of an error message: the text before the first ': ' (details after it vary per file)."""
    return error.split(": ", 1)[0]


class Manifest:
    """Column-wise table of media files. `m[i]` is a ManifestRow; `m[mask_or_indices]` a sub-Manifest."""

    def __init__(self, columns: dict[str, np.ndarray | PackedStrings]):
        missing = [name for name in COLUMNS if name not in columns]
        if missing:
            raise ValueError(f"manifest columns missing: {missing}")
        lengths = {name: len(columns[name]) for name in COLUMNS}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"manifest columns differ in length: {lengths}")
        self._columns: dict[str, np.ndarray | PackedStrings] = {}
        for name, dtype in COLUMNS.items():
            value = columns[name]
            if dtype == "str":
                if not isinstance(value, PackedStrings):
                    value = PackedStrings.from_strings(value)
            else:
                value = np.ascontiguousarray(value, dtype=dtype)
            self._columns[name] = value

    # construction -----------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Manifest:
        """Build from dicts keyed by column name; absent keys take empty/zero values (NaN duration)."""
        columns: dict[str, Any] = {}
        for name, dtype in COLUMNS.items():
            if dtype == "str":
                columns[name] = PackedStrings.from_strings(str(r.get(name, "") or "") for r in rows)
            elif name == "duration":
                columns[name] = np.array([r.get(name, np.nan) for r in rows], dtype=np.float64)
            else:
                columns[name] = np.array([r.get(name, 0) or 0 for r in rows], dtype=dtype)
        return cls(columns)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest:
        """Read a manifest written by `save` (CSV, or Parquet when the name ends .parquet)."""
        return cls(manifest_io.load_columns(path))

    def save(self, path: str | os.PathLike) -> str:
        """Write as CSV, or Parquet when the name ends .parquet (needs pyarrow). Returns the path."""
        return manifest_io.save_columns({name: self.column(name) for name in COLUMNS}, path)

    # access -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._columns["path"])

    def column(self, name: str) -> np.ndarray | PackedStrings:
        """The stored column (numpy array, or PackedStrings for string columns)."""
        if name not in self._columns:
            raise KeyError(f"no manifest column {name!r}; columns: {list(COLUMNS)}")
        return self._columns[name]

    def strings(self, name: str) -> np.ndarray:
        """A string column as a temporary numpy 'U' array, for vectorised comparisons."""
        col = self.column(name)
        if not isinstance(col, PackedStrings):
            raise KeyError(f"manifest column {name!r} is not a string column")
        return col.to_numpy()

    def __getitem__(self, key: int | slice | np.ndarray) -> ManifestRow | Manifest:
        if isinstance(key, (int, np.integer)):
            n = len(self)
            index = int(key) + n if key < 0 else int(key)
            if not 0 <= index < n:
                raise IndexError(f"row {key} out of range for a manifest of {n} rows")
            values = {}
            for name, col in self._columns.items():
                value = col[index]
                values[name] = value.item() if isinstance(value, np.generic) else value
            return ManifestRow(**values)
        return self.take(_as_indices(key, len(self)))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def take(self, indices: np.ndarray) -> Manifest:
        """The rows at `indices` (ints), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return Manifest({
            name: col.take(indices) if isinstance(col, PackedStrings) else col[indices]
            for name, col in self._columns.items()
        })

    def with_column(self, name: str, values: Any) -> Manifest:
        """A copy with one column replaced (e.g. ESC-50 folds mapped to train/test)."""
        columns = dict(self._columns)
        columns[name] = values
        return Manifest(columns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        for name, col in self._columns.items():
            theirs = other._columns[name]
            if isinstance(col, PackedStrings):
                if col != theirs:
                    return False
            elif not np.array_equal(col, theirs, equal_nan=col.dtype.kind == "f"):
                return False
        return True

    def __repr__(self) -> str:
        return f"Manifest({len(self)} rows)"

    # filters ----------------------------------------------------------------------------------
    def usable_mask(self, modality: str = "any") -> np.ndarray:
        """bool [N]: rows without an error that hold `modality` (video, audio, both or any)."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        ok = np.diff(self._columns["error"].offsets) == 0
        has_video, has_audio = self._columns["has_video"], self._columns["has_audio"]
        need = {
            "video": has_video,
            "audio": has_audio,
            "both": has_video & has_audio,
            "any": has_video | has_audio,
        }[modality]
        return ok & need

    def filter(
        self,
        modality: str | None = "any",
        split: str | int | list[str] | None = None,
        label: str | list[str] | None = None,
    ) -> Manifest:
        """Rows that decode and hold `modality` (None: keep unreadable rows too), in `split`, with `label`.

        `split` and `label` accept one value or a list; an int split (ESC-50 fold) compares as text.
        """
        mask = np.ones(len(self), dtype=bool) if modality is None else self.usable_mask(modality)
        for name, wanted in (("split", split), ("label", label)):
            if wanted is None:
                continue
            values = [str(w) for w in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])]
            mask &= np.isin(self.strings(name), values)
        return self.take(np.flatnonzero(mask))

    # labels -----------------------------------------------------------------------------------
    def label_index(self) -> dict[str, int]:
        """label -> class index, over the sorted distinct non-empty labels (stable across splits of one set)."""
        labels = np.unique(self.strings("label"))
        return {str(name): i for i, name in enumerate(labels[labels != ""])}

    def label_ids(self, index: dict[str, int] | None = None) -> np.ndarray:
        """int64 [N] class index of each row (-1 for an empty label); `index` defaults to label_index()."""
        index = self.label_index() if index is None else index
        labels = self.strings("label")
        ids = np.full(len(self), -1, dtype=np.int64)
        for name, i in index.items():
            ids[labels == name] = i
        unknown = (ids == -1) & (labels != "")
        if unknown.any():
            raise ValueError(f"labels not in the given index: {sorted(set(labels[unknown].tolist()))[:5]}")
        return ids

    # health -----------------------------------------------------------------------------------
    def summary(self) -> HealthSummary:
        """Files, hours (readable files), with/without audio (readable files), unreadable by reason kind."""
        readable = np.diff(self._columns["error"].offsets) == 0
        has_audio = self._columns["has_audio"] & readable
        durations = self._columns["duration"][readable]
        reasons = Counter(reason_kind(e) for e, ok in zip(self._columns["error"], readable) if not ok)
        return HealthSummary(
            files=len(self),
            readable=int(readable.sum()),
            hours=float(np.nansum(durations) / 3600.0),
            with_audio=int(has_audio.sum()),
            without_audio=int((readable & ~self._columns["has_audio"]).sum()),
            with_video=int((self._columns["has_video"] & readable).sum()),
            unreadable=int((~readable).sum()),
            reasons=dict(reasons.most_common()),
        )

    @property
    def nbytes(self) -> int:
        return sum(col.nbytes for col in self._columns.values())


def _as_indices(key: slice | np.ndarray | list, n: int) -> np.ndarray:
    if isinstance(key, slice):
        return np.arange(n, dtype=np.int64)[key]
    key = np.asarray(key)
    if key.dtype == np.bool_:
        if key.shape != (n,):
            raise IndexError(f"boolean mask of shape {key.shape} for a manifest of {n} rows")
        return np.flatnonzero(key)
    if key.dtype.kind not in "iu":
        raise IndexError(f"manifest rows are selected by int, slice, bool mask or int array, not {key.dtype}")
    return key.astype(np.int64)
